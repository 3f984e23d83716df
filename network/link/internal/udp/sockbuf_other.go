//go:build !linux

package udp

import "net"

// SetBuffers sets the socket's receive and send buffers to size bytes.
func SetBuffers(c *net.UDPConn, size int) error {
	if err := c.SetReadBuffer(size); err != nil {
		return err
	}
	return c.SetWriteBuffer(size)
}
