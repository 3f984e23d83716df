// Package sysdns points a client host's DNS at the tunnel resolver while the tunnel is up, and puts it
// back as it was: through systemd-resolved (over D-Bus: the tunnel's link gets the resolver and the
// routing domain "~.", so every name goes there) where it runs, or else by replacing /etc/resolv.conf,
// whose previous file is kept in the client's state directory and restored on `down` — also after a
// crash, by the next Apply or Recover. systemd-resolved forgets a link's settings when the link goes,
// so a client that dies leaves nothing behind there.
package sysdns
