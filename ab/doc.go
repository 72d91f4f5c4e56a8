// Package ab owns every A/B slot decision of the rack: which image a node
// boots now, whether that boot is a trial and which attempt, which image
// attestation must expect, and what happens when the node reports healthy,
// reports a failure, stays silent past its health timeout, or its HAT says
// the trial's attempt budget is spent.
//
// Each node has a committed image in its committed slot and at most one trial
// image in the other slot. A Machine moves each node through
//
//	committed --Assign--> trying (attempt 1, deadline) --healthy--> committed (slots swap)
//	                        |  failure report or deadline (silent)
//	                        v
//	            attempt < allowed: trying (attempt+1), power-cycle
//	            attempt = allowed, or the HAT refused the attempt: rolled-back (flagged), power-cycle
//
// A rolled-back node boots its committed image. The same trial image is never
// tried again on that node; a different image may be (the HAT's attempt
// counter is re-armed first, see Decision.Rearm).
//
// Every transition is journaled before it takes effect: the node's whole
// record, with its transition counter, goes to a Journal (store.Bolt or
// store.Memory) in one durable commit, and only then does the in-memory state
// change and the caller see the actions it must perform (power-cycle a node
// through its HAT). An action stays pending in the journal until the caller
// acknowledges it, so a kill -9 between the journal write and the action
// re-issues the action after a restart (Machine.Pending), and a kill before
// the write leaves the transition to be made again.
//
// The HAT's attempt counter (hatlink BootAttempt, BootCommit, BootState) is
// the hardware witness: a report carrying it can only shorten a trial, never
// lengthen it, and a node whose HAT says the trial slot's budget is spent
// never gets a trial of an unknown or failed image, even when this server
// lost its state.
//
// Subpackages: ab/rollout advances staged rollouts over groups of nodes;
// ab/disk is what the agent of a disk-booted Pi does (write the inactive
// slot, verify, tryboot, commit autoboot.txt); ab/pifw models the Pi
// firmware's partition choice for its tests.
package ab
