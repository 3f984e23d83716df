// Package stun answers and asks STUN Binding requests (RFC 8489) with github.com/pion/stun/v3: the
// server side runs beside each dht-bootstrap node so that nodes learn their public address and port
// (and, asking two servers, their NAT's mapping behaviour); the client side builds requests and reads
// answers as plain values, for callers that send them over a socket of their own (the data plane's
// socket demultiplexes STUN with IsMessage).
package stun
