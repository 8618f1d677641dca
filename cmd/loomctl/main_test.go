package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte(`{"status":"ok","switches":1}`))
		case "/api/v1/switches":
			w.Write([]byte(`[{"datapath_id":"000000000ac80001","remote":"@","software":"3.1.0","tables":254}]`))
		case "/api/v1/switches/1":
			w.Write([]byte(`{"datapath_id":"0000000000000001","remote":"@","ports":[{"number":1,"name":"vm1","mac":"02:00:00:00:00:01","up":true}],
				"flows":[{"owner":"l2switch","flow":"table=1,priority=0 actions=FLOOD"}],"meters":["meter=1,pktps"]}`))
		default:
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"not_found","field":"dpid","message":"switch 0000000000000002 is not connected"}`))
		}
	}))
	defer ts.Close()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"health"}, []string{"status: ok, switches: 1"}},
		{[]string{"switches"}, []string{"000000000ac80001", "3.1.0", "254"}},
		{[]string{"switch", "1"}, []string{"1 vm1 02:00:00:00:00:01 up", "meter: meter=1,pktps", "l2switch  table=1,priority=0 actions=FLOOD"}},
		{[]string{"flows", "1"}, []string{"l2switch  table=1,priority=0 actions=FLOOD"}},
	} {
		var out bytes.Buffer
		if err := run(append([]string{"--api", ts.URL}, tc.args...), &out); err != nil {
			t.Errorf("%v: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
	err := run([]string{"--api", ts.URL, "switch", "2"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("unknown switch: %v", err)
	}
	if err := run([]string{"--api", ts.URL, "bogus"}, &bytes.Buffer{}); err == nil {
		t.Error("unknown command: no error")
	}
	if err := run([]string{"--api", ts.URL, "flows"}, &bytes.Buffer{}); err == nil {
		t.Error("missing argument: no error")
	}
}
