package authority

import "testing"

func TestURLPrefix(t *testing.T) {
	for url, want := range map[string]string{
		"http://198.51.100.2:8080/": "", "https://a1.example.net/directory": "/directory",
		"https://a1.example.net/x/y/": "/x/y", "http://[2001:db8::3]": "",
	} {
		if got, err := urlPrefix(url); err != nil || got != want {
			t.Errorf("urlPrefix(%q) = %q, %v; want %q", url, got, err, want)
		}
	}
	if _, err := urlPrefix("http://a.example/%7Bserial%7D"); err == nil {
		t.Error("a path with braces was accepted")
	}
}
