package daemon

import (
	"fmt"
	"slices"

	"go.uber.org/zap"
)

// jobState is where a cook or a build is in its life. The moves allowed
// (jobMoves) are written down here once and checked at every move:
//
//	build:  queued ──► running ──► done
//	          │           │
//	          │           └──► stopping ──► done
//	          └──► done          (failed or cancelled before it started)
//	                                └──► dropped (it did not stop within CancelGrace)
//
//	cook:   checking ──► running ──► done
//	          │  │          │
//	          │  └──► done  └──► stopping ──► done, or dropped
//	          └──► stopping      (the image exists: no cook)
//
// Why a job stops (superseded, cancelled, obsolete) is an attribute of
// the job, not a state.
type jobState uint8

const (
	stateQueued   jobState = iota // a build waits to start (Scheduler.pending)
	stateChecking                 // a cook asks whether its image exists
	stateRunning                  // the builder works on it
	stateStopping                 // cancelled; waiting for it to end
	stateDone                     // ended, recorded
	stateDropped                  // abandoned: it did not stop within CancelGrace
)

var jobMoves = map[jobState][]jobState{
	stateQueued:   {stateRunning, stateDone},
	stateChecking: {stateRunning, stateStopping, stateDone},
	stateRunning:  {stateStopping, stateDone},
	stateStopping: {stateDone, stateDropped},
}

func (st jobState) String() string {
	switch st {
	case stateQueued:
		return "queued"
	case stateChecking:
		return "checking"
	case stateRunning:
		return "running"
	case stateStopping:
		return "stopping"
	case stateDone:
		return "done"
	case stateDropped:
		return "dropped"
	}
	return "jobState(?)"
}

// move moves a job's state to next. A move jobMoves does not allow is a
// bug of the scheduler: it is logged and counted (the tests fail on it),
// and the state moves anyway.
func (s *Scheduler) move(st *jobState, next jobState, job string) {
	if !slices.Contains(jobMoves[*st], next) {
		s.illegalMoves++
		s.log.Error("internal error: a job made a move it may not make",
			zap.String("job", job), zap.Stringer("from", *st), zap.Stringer("to", next))
	}
	*st = next
}

func (j *buildJob) label() string { return fmt.Sprintf("build #%d", j.rec.ID) }

func (c *cookJob) label() string {
	if c.rec != nil {
		return fmt.Sprintf("cook #%d of %s", c.rec.ID, c.r.ShortHash())
	}
	return "cook check of " + c.r.ShortHash()
}
