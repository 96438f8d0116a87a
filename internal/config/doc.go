// Package config maps flags and EARSHOT_* environment variables onto one typed struct per
// service: defaults first, then the environment, then flags; unknown EARSHOT_* variables
// are errors, and Validate says how to fix what is wrong.
package config
