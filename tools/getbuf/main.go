// Command getbuf puts the prebuilt buf binary of the version that a tools
// module pins (tools/buf/go.mod) in a cache directory and prints its path,
// so that scripts/example need not build buf from source, which takes
// minutes on a new machine.
//
//	go -C tools/getbuf run . -dir "$PWD/.cache/buf" "$PWD/tools/buf/go.mod"
//
// It downloads the binary from buf's own npm packages (@bufbuild/buf-<os>-<arch>,
// from the registry that npm_config_registry names, npm's public one by
// default) and accepts it only if the package's SHA-512 is the one pinned
// below (the registry's dist.integrity), so a registry or mirror cannot
// substitute another binary. It fails, and the caller builds buf from
// source, when the pinned version has no sum here for this platform, when
// the version in go.mod is not the one pinned here, or when the download
// fails.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// version is the buf release whose package sums are pinned below; it must
// be the version that tools/buf/go.mod requires.
const version = "v1.75.0"

// packages maps GOOS/GOARCH to the npm package of buf's binary for it.
var packages = map[string]string{
	"linux/amd64":   "buf-linux-x64",
	"linux/arm64":   "buf-linux-aarch64",
	"darwin/amd64":  "buf-darwin-x64",
	"darwin/arm64":  "buf-darwin-arm64",
	"windows/amd64": "buf-win32-x64",
	"windows/arm64": "buf-win32-arm64",
}

// integrity is each package's dist.integrity at version, as
// `npm view @bufbuild/<package>@<version> dist.integrity` prints it.
var integrity = map[string]string{
	"buf-linux-x64":     "sha512-YGGJAx0lpMCE7aMWjNOJcfoEaG/e+iYHnTC4SZ0P5eS4IffMryA9Z4/bb1m1wNXAEJ8ATFMEZOAk/5x9VE47ig==",
	"buf-linux-aarch64": "sha512-eX+XyokzJDqsNIFo8b1O3DBvbnksOozPJX4QVsNn61JqSUtWspyTNeYqwg8lRDancML+bDqZEDFPABjAsVCQGQ==",
	"buf-darwin-x64":    "sha512-U2W+MRE9jJ7Am7x02ZWt87U5lfPrjKMdB1aZDslsuyOHo+fEUvZolupmhoW30v6syNAWBOfkoi0k5TLc2FNGqQ==",
	"buf-darwin-arm64":  "sha512-QiQYSmtVUcKy9DK/d+zJ3+D4iUQmmiDQ3i8/yBr8cf7Nr28lqKMAIKznJE/uGRsjr90fHaUQO+Xsedec0ArN5g==",
	"buf-win32-x64":     "sha512-/BgLt3VWndocuG4lbMdlBc1i41I+Bap4zm8R1Cnmov6DtoAQp4dy/leRrvT4aDArIUQ1o7W/Y92xTRITedU4ww==",
	"buf-win32-arm64":   "sha512-iRge6Ntta41gt0i7P8/EZFDWe3uLNnCEN86r1tKTWctumWxPET3UJcSzzYPyL4gxvzu1/1VTu+AB3+MYAqHy6Q==",
}

// bufModule is the module whose version the tools module's go.mod requires.
const bufModule = "github.com/bufbuild/buf"

func main() {
	dir := flag.String("dir", "", "cache directory; the binary goes to DIR/<version>/buf")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: getbuf -dir CACHEDIR TOOLS_GO_MOD")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *dir == "" || flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	path, err := get(*dir, flag.Arg(0), runtime.GOOS+"/"+runtime.GOARCH)
	if err != nil {
		fmt.Fprintln(os.Stderr, "getbuf:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

// get returns the path of the cached buf binary for platform, downloading
// and checking it first if it is not there.
func get(dir, gomod, platform string) (string, error) {
	pinned, err := requiredVersion(gomod)
	if err != nil {
		return "", err
	}
	if pinned != version {
		return "", fmt.Errorf("%s requires buf %s, but getbuf has the sums of %s: update both together", gomod, pinned, version)
	}
	pkg, ok := packages[platform]
	if !ok {
		return "", fmt.Errorf("buf publishes no npm package for %s", platform)
	}
	name := "buf"
	if strings.HasPrefix(platform, "windows/") {
		name = "buf.exe"
	}
	path, err := filepath.Abs(filepath.Join(dir, version, name))
	if err != nil {
		return "", err
	}
	// The binary is written only once its package's sum matched.
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}

	registry := strings.TrimSuffix(os.Getenv("npm_config_registry"), "/")
	if registry == "" {
		registry = "https://registry.npmjs.org"
	}
	v := strings.TrimPrefix(version, "v")
	url := fmt.Sprintf("%s/@bufbuild/%s/-/%s-%s.tgz", registry, pkg, pkg, v)
	fmt.Fprintf(os.Stderr, "getbuf: downloading buf %s for %s (@bufbuild/%s)...\n", version, platform, pkg)
	tgz, err := download(url)
	if err != nil {
		return "", err
	}
	sum := sha512.Sum512(tgz)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != integrity[pkg] {
		return "", fmt.Errorf("%s: integrity %s, want the pinned %s", url, got, integrity[pkg])
	}
	bin, err := extract(tgz, "package/bin/"+name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", url, err)
	}
	return path, writeAtomically(path, bin)
}

// requiredVersion returns the version of bufModule that the go.mod file
// requires.
func requiredVersion(gomod string) (string, error) {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(f) >= 2 && f[0] == bufModule {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("%s requires no %s", gomod, bufModule)
}

// download returns the body of url, giving up after a bounded time so that
// the caller can build buf from source instead.
func download(url string) ([]byte, error) {
	client := &http.Client{Timeout: 3 * time.Minute}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	// buf's packages are about 35 MB; refuse anything far larger.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return body, nil
}

// extract returns the file named name from the gzipped tar archive tgz.
func extract(tgz []byte, name string) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("no " + name + " in the package")
		}
		if err != nil {
			return nil, err
		}
		if hdr.Name == name && hdr.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}

// writeAtomically writes an executable file at path through a temporary
// file in the same directory, so that a run that stops halfway, or two runs
// at once, never leave a partial binary at path.
func writeAtomically(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".buf-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o755); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
