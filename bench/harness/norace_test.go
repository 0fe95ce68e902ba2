package harness

// raceEnabled is set when the tests run under -race.
var raceEnabled bool
