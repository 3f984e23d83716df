package tun

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	sweepStaleNetns()
	goleak.VerifyTestMain(m)
}
