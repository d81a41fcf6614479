// Command archive packs a directory into a .tar.gz or .zip archive whose
// bytes depend only on the files' names and contents, so that a release
// rebuilt from the same tag is byte-identical: entries in lexical order,
// every time set to -mtime, owner root, and modes fixed to 0755 for
// directories and executables and 0644 for other files. scripts/release
// runs it; tar and zip would need version-specific flags for the same
// result, and zip is not on every machine.
//
//	go run ./release/archive -mtime 1700000000 -o NAME.tar.gz DIR
//
// The archive holds DIR's base name as its one top-level directory.
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/flate"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	mtime := flag.Int64("mtime", -1, "modification time of every entry, in seconds since the Unix epoch (SOURCE_DATE_EPOCH)")
	out := flag.String("o", "", "archive to write, ending in .tar.gz or .zip")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: archive -mtime SECONDS -o NAME.tar.gz|NAME.zip DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *mtime < 0 || *out == "" || flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, flag.Arg(0), time.Unix(*mtime, 0).UTC()); err != nil {
		fmt.Fprintln(os.Stderr, "archive:", err)
		os.Exit(1)
	}
}

// entry is one file or directory to archive.
type entry struct {
	name string // slash-separated, below the top-level directory's name
	path string // on disk; empty for a directory
	mode fs.FileMode
}

func run(out, dir string, mtime time.Time) (err error) {
	entries, err := walk(dir)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out)
		}
	}()
	switch {
	case strings.HasSuffix(out, ".tar.gz"):
		return writeTarGz(f, entries, mtime)
	case strings.HasSuffix(out, ".zip"):
		return writeZip(f, entries, mtime)
	}
	return fmt.Errorf("%s: want a name ending in .tar.gz or .zip", out)
}

// walk lists dir and everything in it in lexical order (fs.WalkDir's),
// with their fixed modes. It refuses anything but files and directories.
func walk(dir string) ([]entry, error) {
	top := filepath.Base(filepath.Clean(dir))
	var entries []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(top, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			entries = append(entries, entry{name: name + "/", mode: fs.ModeDir | 0o755})
		case info.Mode().IsRegular():
			mode := fs.FileMode(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			entries = append(entries, entry{name: name, path: p, mode: mode})
		default:
			return fmt.Errorf("%s: neither a file nor a directory", p)
		}
		return nil
	})
	if err == nil && len(entries) < 2 {
		err = fmt.Errorf("%s: no files", dir)
	}
	return entries, err
}

func writeTarGz(w io.Writer, entries []entry, mtime time.Time) error {
	// A zero gzip header: no name and no time.
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    e.name,
			Mode:    int64(e.mode.Perm()),
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		if e.mode.IsDir() {
			hdr.Typeflag = tar.TypeDir
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		hdr.Typeflag = tar.TypeReg
		if err := copyFile(e.path, func(size int64) (io.Writer, error) {
			hdr.Size = size
			return tw, tw.WriteHeader(hdr)
		}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func writeZip(w io.Writer, entries []entry, mtime time.Time) error {
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	for _, e := range entries {
		hdr := &zip.FileHeader{Name: e.name, Modified: mtime}
		hdr.SetMode(e.mode)
		if e.mode.IsDir() {
			if _, err := zw.CreateHeader(hdr); err != nil {
				return err
			}
			continue
		}
		hdr.Method = zip.Deflate
		if err := copyFile(e.path, func(int64) (io.Writer, error) {
			return zw.CreateHeader(hdr)
		}); err != nil {
			return err
		}
	}
	return zw.Close()
}

// copyFile copies the file at p into the writer that open returns for the
// file's size.
func copyFile(p string, open func(size int64) (io.Writer, error)) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	w, err := open(info.Size())
	if err != nil {
		return err
	}
	n, err := io.Copy(w, f)
	if err == nil && n != info.Size() {
		err = errors.New(p + ": changed while it was archived")
	}
	return err
}
