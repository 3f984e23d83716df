//go:build !linux

package link

import "net"

func setSocketBuffers(c *net.UDPConn, size int) error {
	if err := c.SetReadBuffer(size); err != nil {
		return err
	}
	return c.SetWriteBuffer(size)
}
