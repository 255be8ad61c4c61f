package webui

import (
	"sync"
	"time"
)

// Limiter counts attempts per key (an address, a client IP) in a sliding
// window and refuses more than max of them. It lives in memory: each node
// limits on its own, which bounds guessing per node; the providers' own
// lockouts stay the last line.
type Limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	attempts map[string][]time.Time
}

// maxTrackedKeys bounds the memory an attacker can make the limiter use
// by inventing keys; past it, stale keys are dropped first.
const maxTrackedKeys = 100_000

// NewLimiter allows max attempts per key within window. now may be nil.
func NewLimiter(max int, window time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{max: max, window: window, now: now, attempts: map[string][]time.Time{}}
}

// Allow records an attempt for key and reports whether it is within the
// limit; when it is not, retryAfter says when the oldest attempt leaves
// the window. Refused attempts are not recorded, so waiting always helps.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.recent(key, now)
	if len(recent) >= l.max {
		l.attempts[key] = recent
		return false, recent[0].Add(l.window).Sub(now)
	}
	if len(l.attempts) >= maxTrackedKeys {
		l.prune(now)
	}
	l.attempts[key] = append(recent, now)
	return true, 0
}

// Reset forgets key's attempts (after a successful sign-in, say).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	delete(l.attempts, key)
	l.mu.Unlock()
}

func (l *Limiter) recent(key string, now time.Time) []time.Time {
	ts := l.attempts[key]
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-l.window)) {
		i++
	}
	return ts[i:]
}

func (l *Limiter) prune(now time.Time) {
	for k := range l.attempts {
		if r := l.recent(k, now); len(r) == 0 {
			delete(l.attempts, k)
		}
	}
	if len(l.attempts) >= maxTrackedKeys {
		clear(l.attempts) // all are active: forget them rather than grow
	}
}
