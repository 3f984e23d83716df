package dht

import (
	alog "github.com/anacrolix/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapHandler passes the library's log records to zap.
type zapHandler struct{ z *zap.Logger }

func (h zapHandler) Handle(r alog.Record) {
	if ce := h.z.Check(zapLevel(r.Level), r.Text()); ce != nil {
		ce.Write()
	}
}

// zapLevel maps the library's levels onto zap's. The library's errors never stop the node (a lonely
// first node logs one a minute for having nobody to refresh from), so they arrive as warnings.
func zapLevel(l alog.Level) zapcore.Level {
	switch {
	case l.LessThan(alog.Info):
		return zapcore.DebugLevel
	case l.LessThan(alog.Warning):
		return zapcore.InfoLevel
	default:
		return zapcore.WarnLevel
	}
}

// libraryLogger returns a library logger that writes to z. Debug records are filtered out before
// they are built unless z wants them: the library logs every query and reply at debug.
func libraryLogger(z *zap.Logger) alog.Logger {
	var l alog.Logger
	l.SetHandlers(zapHandler{z})
	if !z.Core().Enabled(zapcore.DebugLevel) {
		l = l.WithFilterLevel(alog.Info)
	}
	return l
}
