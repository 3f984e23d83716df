// Package payment will hold bandwidth accounting and payment: clients buy bandwidth with Monero, are
// issued unlinkable blind-signed tokens and spend them at relays and exits, with spent tokens kept in an
// embedded database so none is accepted twice. No issue schedules it yet; nothing is here.
package payment
