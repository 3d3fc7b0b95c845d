// Package state holds the type of one durable-state update, so that
// package enrich (which builds the chain) and the enrichers it imports can
// share it without an import cycle; enrich.StateChange is an alias of it.
package state

// Change is one update of an enricher's durable state; a nil Value deletes
// Key.
type Change struct{ Key, Value []byte }
