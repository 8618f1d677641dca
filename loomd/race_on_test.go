//go:build race

package loomd

// raceEnabled: built with -race.
const raceEnabled = true
