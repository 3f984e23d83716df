// Package daemon holds what every MeshVPN binary does the same way: reading its TOML config file
// strictly, building its quiet-by-default zap logger, and serving Prometheus metrics on a local address.
package daemon
