// Package rollout moves groups of nodes to a new image in batches. It is the
// controller behind a rack config's groups: editing a group's image starts a
// rollout, editing it back undoes it, and an operator can pause, resume and
// undo through the admin API.
//
// A rollout assigns the new image (ab.Machine.Assign) to at most
// maxUnavailable members at a time, waits until each of them committed the
// image or was rolled back (the batch settled), waits the policy's pause,
// and assigns the next batch. A member whose trial was rolled back halts the
// rollout (onFailure: halt) or also starts an undo (onFailure: rollback).
// An undo withdraws the trials under way and gives the previous image back
// to the members that committed the new one, in batches under the same
// bound. Members out of service (trying an image) never exceed
// maxUnavailable, because a batch starts only when the previous one settled.
//
// The controller keeps one record per group ("rollout/<group>") in the same
// journal as the node records, written in the same commit as the
// assignments of a batch, so a kill -9 at any point resumes without
// assigning a node twice: which members still need the image is derived from
// their A/B records, never from a list kept aside.
package rollout
