// Package wire is Loom's OpenFlow 1.3 wire codec: framing, bounds-checked
// decoders for every message a switch sends, and small encoders for the
// requests that github.com/contiv/libOpenflow lacks (HELLO with a version
// bitmap, ROLE_REQUEST, SET_ASYNC, BARRIER, multipart request bodies and ONF
// bundles).
//
// The package is pure: no goroutines, no logging, no controller logic. Every
// decoder checks lengths before it reads and returns an error instead of
// panicking; the fuzz targets in this package hold it to that.
//
// Ownership: decoded structures may alias the message buffer they were
// decoded from (Data, Match and Body fields). The session hands every message
// its own buffer, so they stay valid for as long as the caller keeps them;
// copy before reusing a buffer.
package wire
