/* A small JSON reader for the vector tests (wycheproof_test, pq_test): it
 * builds a tree of the whole document and only knows what RFC 8259
 * defines. */
#ifndef TESTS_JSON_TREE_H
#define TESTS_JSON_TREE_H

#include <stdbool.h>
#include <stddef.h>

enum jtype { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

struct jnode {
	enum jtype type;
	char *key;		    /* member name when the parent is an object */
	char *str;		    /* J_STRING: decoded, NUL-terminated */
	size_t len;		    /* J_STRING: decoded length */
	double num;		    /* J_NUMBER */
	bool boolean;		    /* J_BOOL */
	struct jnode *child, *next; /* first element or member; next sibling */
};

/* Parses a whole document; on error prints where (path:line) to stderr
 * and returns NULL. */
struct jnode *json_parse(const char *text, size_t len, const char *path);
void json_free(struct jnode *n);
/* The member named key of an object, if it has the wanted type. */
const struct jnode *jget(const struct jnode *obj, const char *key, enum jtype type);
/* An integer member in [0, max]; false if absent, fractional or out of range. */
bool jget_uint(const struct jnode *obj, const char *key, long max, long *out);
/* The value of a hex digit, or -1. */
int hex_digit(char c);
/* A whole file in a malloc'd buffer (NULL on failure). */
char *read_whole_file(const char *path, size_t *len);

#endif
