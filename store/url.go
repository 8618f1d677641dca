package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// URL is where a store lives, as loomd's --store names it.
type URL struct {
	// Dir is the data directory of a bbolt store.
	Dir string
	// Etcd are the client URLs of an etcd cluster (then Dir is empty).
	Etcd []string
}

func (u URL) String() string {
	if len(u.Etcd) > 0 {
		return "etcd:" + strings.Join(u.Etcd, ",")
	}
	return "bolt:" + u.Dir
}

// ParseURL reads a --store value: "etcd:http://A:2379,http://B:2379"
// (http or https URLs of the cluster's members), "bolt:DIR", or a plain
// directory, which is a bbolt store.
func ParseURL(s string) (URL, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || scheme == "" || strings.ContainsAny(scheme, `/\.`) {
		scheme, rest = "bolt", s
	}
	switch scheme {
	case "bolt":
		if rest == "" {
			return URL{}, errors.New("store: no directory")
		}
		return URL{Dir: rest}, nil
	case "etcd":
		var eps []string
		for _, ep := range strings.Split(rest, ",") {
			ep = strings.TrimSpace(ep)
			if ep == "" {
				continue
			}
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return URL{}, fmt.Errorf("store: etcd endpoint %q: want http://HOST:PORT or https://HOST:PORT", ep)
			}
			eps = append(eps, u.Scheme+"://"+u.Host)
		}
		if len(eps) == 0 {
			return URL{}, errors.New("store: etcd: no endpoints (etcd:http://HOST:2379,...)")
		}
		return URL{Etcd: eps}, nil
	}
	return URL{}, fmt.Errorf("store: %q: unknown store %q (bolt:DIR, etcd:URL,... or a directory)", s, scheme)
}

// OpenURL opens the store u names; opt configures an etcd store (its
// Endpoints are u's).
func OpenURL(ctx context.Context, u URL, opt EtcdOptions) (*Store, error) {
	if len(u.Etcd) == 0 {
		return Open(u.Dir)
	}
	opt.Endpoints = u.Etcd
	e, err := OpenEtcd(ctx, opt)
	if err != nil {
		return nil, err
	}
	return &Store{e}, nil
}
