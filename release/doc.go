// Package release tests the release that scripts/release builds: that the
// same revision gives byte-identical artifacts, and that the plugin
// installed from the .deb generates the committed example fragments under
// real protoc. Its archive command packs the release's archives.
package release
