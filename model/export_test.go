package model

import (
	"fmt"
	"reflect"
)

// CheckIndex says how the Service's index differs from one built afresh
// from its snapshot (nil: it does not; or the Service has written nothing
// since it loaded).
func CheckIndex(s *Service) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, snap := s.idx, s.snap.Load()
	if x == nil {
		return nil
	}
	if x.at != snap {
		return fmt.Errorf("the index is of revision %d, the snapshot %d", x.at.Revision, snap.Revision)
	}
	got, want := *x, *newIndex(snap)
	got.at, want.at = nil, nil
	if reflect.DeepEqual(got, want) {
		return nil
	}
	a, b := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range a.NumField() {
		if fa, fb := fmt.Sprint(a.Field(i)), fmt.Sprint(b.Field(i)); fa != fb {
			return fmt.Errorf("index.%s:\n%s\nrebuilt:\n%s", a.Type().Field(i).Name, fa, fb)
		}
	}
	return fmt.Errorf("the index differs from the rebuilt one")
}
