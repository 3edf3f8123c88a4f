// Package handle holds the rules a PDS applies to handles it hosts: syntax,
// normalization, disallowed TLDs, service-domain constraints and reserved words.
package handle
