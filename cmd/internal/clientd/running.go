package clientd

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// RunningFile is where a running daemon notes its control socket, so that `status` and `down` find a
// daemon that `up --config FILE` started without being given FILE again (a variable for tests).
var RunningFile = "/run/meshvpn/client.running"

// running is what RunningFile holds.
type running struct {
	PID           int    `json:"pid"`
	ControlSocket string `json:"control_socket"`
}

// noteRunning writes RunningFile, and has Close remove it if it is still this daemon's.
func (d *Daemon) noteRunning() {
	path := RunningFile
	data, _ := json.Marshal(running{PID: os.Getpid(), ControlSocket: d.cfg.ControlSocket})
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return // status and down then need --config or --control-socket: nothing worse
	}
	tmp := path + ".tmp"
	if os.WriteFile(tmp, data, 0o644) != nil || os.Rename(tmp, path) != nil {
		os.Remove(tmp)
		return
	}
	d.stack.Func("running file", func() {
		if r, err := readRunning(path); err == nil && r.PID == os.Getpid() {
			os.Remove(path)
		}
	})
}

func readRunning(path string) (running, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return running{}, err
	}
	var r running
	if err := json.Unmarshal(data, &r); err != nil || r.PID <= 0 || !filepath.IsAbs(r.ControlSocket) {
		return running{}, errors.New("not a running file")
	}
	return r, nil
}

// FindRunning returns the control socket a running daemon noted in RunningFile, if that daemon's
// process still exists.
func FindRunning() (string, bool) {
	r, err := readRunning(RunningFile)
	if err != nil {
		return "", false
	}
	if err := syscall.Kill(r.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return "", false // it died without removing the file
	}
	return r.ControlSocket, true
}
