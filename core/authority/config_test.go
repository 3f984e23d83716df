package authority

import (
	"strings"
	"testing"
	"time"
)

// TestDefaultValidity: without a validity, a document is valid for three periods; a validity under
// two periods is refused.
func TestDefaultValidity(t *testing.T) {
	c := defaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	if v := c.validity(); v != 3*c.Period {
		t.Fatalf("validity %v, want three periods of %v", v, c.Period)
	}
	c.Validity = 2*c.Period - time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "two periods") {
		t.Fatalf("validity %v for period %v: %v", c.Validity, c.Period, err)
	}
}
