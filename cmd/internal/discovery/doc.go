// Package discovery is the meshvpn-discovery daemon: the configuration file (example.toml) of a
// discovery authority, and the wiring of core/authority (which crawls, probes, flags and signs) with
// the genesis file, the identity key on disk and Prometheus metrics.
package discovery
