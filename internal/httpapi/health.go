package httpapi

import (
	"context"
	"net/http"
	"time"
)

// healthz says the process serves HTTP; it checks nothing else so that a
// slow database never gets a healthy process restarted.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	_ = writeData(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether this node can serve requests: the database answers.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.svc.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "readiness check failed", "error", err)
		writeError(w, r, s.log, errorf(http.StatusServiceUnavailable, "unavailable", "database is not reachable"))
		return
	}
	_ = writeData(w, r, http.StatusOK, map[string]string{"status": "ready"})
}
