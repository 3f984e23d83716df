// Package deb checks the Debian packages `make package` builds (packaging/): lintian passes, every
// systemd unit verifies and runs its daemon with the least privilege it needs, the example
// configurations are conffiles, and the programs unpacked from the packages run a whole testnet.
package deb
