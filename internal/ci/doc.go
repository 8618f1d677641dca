// Package ci holds checks on the repository itself, run with the other
// tests: the install list covers every command the tests and the demo
// run.
package ci
