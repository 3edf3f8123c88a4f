// Package config reads Hearth's configuration: the official PDS environment
// variables (PDS_*) with the official defaults, validated once at start-up.
package config
