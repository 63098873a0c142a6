/* Byte sources and sinks: the seams between the age format code and files,
 * pipes, armor and tests. A source reads like read(2); a sink takes an
 * iovec array so that decrypted chunks go out in one writev. */
#ifndef VF_IO_H
#define VF_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "base/error.h"

struct vf_arena;

/* A regular file behind a source, which the payload stream may read out of
 * order: each thread reads (pread) the chunk it is about to seal, so the
 * copy out of the page cache is spread over the cores, and the chunk is
 * still in that core's cache when it is sealed. */
struct vf_src_at {
	int fd;
	off_t start;  /* the source's position: where byte 0 is in the file */
	uint64_t len; /* bytes from start to the end of the file when asked */
	const char *name;
};

struct vf_src {
	/* Returns the number of bytes read (> 0), 0 at the end of input, or
	 * -1 with err set. Short reads are allowed. */
	ssize_t (*read)(struct vf_src *src, uint8_t *buf, size_t len, struct vf_error *err);
	/* True when more input can be read without blocking (or when that is
	 * unknown); used to release decrypted data from slow pipes promptly. */
	bool (*ready)(struct vf_src *src);
	/* Optional (NULL: never). True, with *at filled in, when the source
	 * reads a regular file straight through, with nothing buffered, so
	 * that its bytes may be read out of order with vf_src_read_at. */
	bool (*positional)(struct vf_src *src, struct vf_src_at *at);
	/* With positional: bytes up to n were read out of order; move the
	 * position past them, as read() would have. */
	enum vf_code (*advance)(struct vf_src *src, uint64_t n, struct vf_error *err);
};

/* Reads len bytes at offset off from at->start, fewer only at the end of
 * the file; -1 with errno on failure. Safe from several threads at once. */
ssize_t vf_src_read_at(const struct vf_src_at *at, uint8_t *buf, size_t len, uint64_t off);

struct vf_sink {
	enum vf_code (*write)(struct vf_sink *sink, const struct iovec *iov, int iovcnt,
			      struct vf_error *err);
	/* Completes the output (armor footer); does not close descriptors. */
	enum vf_code (*finish)(struct vf_sink *sink, struct vf_error *err);
};

enum vf_code vf_sink_write(struct vf_sink *sink, const void *buf, size_t len,
			   struct vf_error *err);

/* Reads until len bytes or end of input; *got tells how many. */
enum vf_code vf_read_full(struct vf_src *src, uint8_t *buf, size_t len, size_t *got,
			  struct vf_error *err);

/* A file descriptor as a source. name is used in messages. */
struct vf_fd_src {
	struct vf_src base;
	int fd;
	const char *name;
};
void vf_fd_src_init(struct vf_fd_src *s, int fd, const char *name);

/* A file descriptor as a sink. */
struct vf_fd_sink {
	struct vf_sink base;
	int fd;
	const char *name;
};
void vf_fd_sink_init(struct vf_fd_sink *s, int fd, const char *name);

/* A growable byte buffer, also usable as a sink and (with a cursor) as a
 * source. */
struct vf_buf {
	struct vf_sink sink;
	uint8_t *data;
	size_t len, cap;
};
void vf_buf_init(struct vf_buf *b);
enum vf_code vf_buf_append(struct vf_buf *b, const void *p, size_t len, struct vf_error *err);
enum vf_code vf_buf_append_str(struct vf_buf *b, const char *s, struct vf_error *err);
/* Wipes and frees the contents. */
void vf_buf_free(struct vf_buf *b);

struct vf_mem_src {
	struct vf_src base;
	const uint8_t *data;
	size_t len, pos;
};
void vf_mem_src_init(struct vf_mem_src *s, const uint8_t *data, size_t len);

/* A buffered reader over another source, with line and peek access for
 * parsers; it is itself a source that drains its buffer first. */
struct vf_bufreader {
	struct vf_src base;
	struct vf_src *inner;
	uint8_t *buf;
	size_t cap, start, end;
	bool eof;
};
enum vf_code vf_bufreader_init(struct vf_bufreader *br, struct vf_src *inner, size_t cap,
			       struct vf_error *err);
void vf_bufreader_free(struct vf_bufreader *br);
/* Makes at least n bytes available unless input ends first; *avail says
 * how many are, at *p. n must not exceed the capacity. */
enum vf_code vf_bufreader_peek(struct vf_bufreader *br, size_t n, const uint8_t **p,
			       size_t *avail, struct vf_error *err);
void vf_bufreader_consume(struct vf_bufreader *br, size_t n);
/* Returns the next line, its LF included when present, in *line and *len
 * (valid until the next call); *len is 0 at the end of input. A line longer
 * than the buffer capacity sets *too_long. */
enum vf_code vf_bufreader_line(struct vf_bufreader *br, const uint8_t **line, size_t *len,
			       bool *too_long, struct vf_error *err);

/* Reading a whole file with a size bound (file.c): the one way the tools
 * and libraries read a spec, a store file, a key file, a credential or a
 * VmConfig. What the path is is checked before open (a device is never
 * opened by mistake) and decided by fstat on the descriptor; unless any_type,
 * it is opened O_NONBLOCK (a FIFO swapped in cannot hang the open). */
enum vf_follow {
	VF_NOFOLLOW, /* a symlink as the last component is refused (store files) */
	VF_FOLLOW,   /* the user named this path: follow it (specs, --vm-config) */
};
struct vf_read_opts {
	size_t max;	    /* more bytes than this fail with VF_READ_SIZE */
	enum vf_follow follow;
	bool any_type;	    /* also pipes and devices, read to their end (key files
			     * from process substitution); directories never */
	bool guarded;	    /* data in vf_secure_alloc memory (vf_secure_free it) */
	bool scratch;	    /* or on the thread's guarded scratch stack: for a short
			     * read freed soon, as a key file's text is (no mmap) */
	struct vf_arena *arena; /* or data from this guarded arena */
};
/* Why a read failed, for callers that word the reason themselves. */
enum vf_read_fail {
	VF_READ_NONE,
	VF_READ_OPEN,	 /* open or stat failed: errnum (ELOOP: a symlink, not followed) */
	VF_READ_TYPE,	 /* not a regular file: mode */
	VF_READ_SIZE,	 /* larger than max */
	VF_READ_CHANGED, /* a regular file shrank or grew while read */
	VF_READ_IO,	 /* read failed: errnum */
	VF_READ_NOMEM,
};
struct vf_file {
	uint8_t *data; /* NUL-terminated (not counted in len) */
	size_t len;
	size_t size; /* bytes allocated at data: what vf_file_free gives back */
	mode_t mode; /* of the opened file */
	enum vf_read_fail fail;
	int errnum;
};
/* Reads path (relative to dirfd, or AT_FDCWD) whole into f. On failure
 * err says "path: reason" and f->fail which. */
enum vf_code vf_read_file(int dirfd, const char *path, const struct vf_read_opts *o,
			  struct vf_file *f, struct vf_error *err);
/* The same for a descriptor already open; name is for messages. */
enum vf_code vf_read_fd(int fd, const char *name, const struct vf_read_opts *o,
			struct vf_file *f, struct vf_error *err);
/* Releases f->data as o says it was allocated, all f->size bytes of it
 * (the scratch stack takes a block back only whole; an arena's block is
 * wiped, and released with the arena). */
void vf_file_free(struct vf_file *f, const struct vf_read_opts *o);

/* A file that answers a question in place of the terminal (vargen
 * generate --prompt NAME=@FILE): all its bytes, whatever they are (none is
 * an answer too), at most VF_PROMPT_FILE_MAX, into guarded memory (free
 * with vf_secure_free). path is as the user gave it: symlinks followed,
 * pipes and /dev/fd/N read to their end, "-" is standard input; a
 * directory is refused. Not the key-file reader: its errors say "prompt
 * file PATH: why" ("larger than 1 MiB", "No such file or directory"). */
#define VF_PROMPT_FILE_MAX ((size_t)1 << 20)
enum vf_code vf_read_prompt_file(const char *path, uint8_t **data, size_t *len,
				 struct vf_error *err);

#endif
