package clientd

import "github.com/meshvpn/meshvpn/network/natcheck"

// natStatus returns what the last NAT detection found, for Status.
func natStatus(w *natcheck.Watch) *NATStatus {
	r, err := w.Last()
	s := &NATStatus{}
	if err != nil {
		s.Error = err.Error()
	}
	if r != nil {
		s.Mapping, s.Public, s.Local = r.Mapping.String(), r.Public.String(), r.Local.String()
		s.Servers = len(r.Servers)
	}
	return s
}
