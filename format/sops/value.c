/* Single values: the ENC[] form and its AES-256-GCM opening, and scalars as
 * sops's Go code reads and prints them. The exactness matters twice: the MAC
 * covers each value as Go's strconv formats it, and an import must give the
 * bytes `sops -d` prints.
 *
 * Numbers go through strtod and snprintf in the "C" locale (uselocale on
 * this thread only): the decimal point must be '.', whatever the process's
 * locale. */
#include "sops/sops_internal.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/crypto.h"
#include "base/secmem.h"

/* ---- the C locale, for strtod and snprintf ---- */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* Switches this thread to the C locale for numbers; returns the old one
 * (or 0 when the C locale could not be made: the tools never change the
 * locale, so numbers are then read in the C locale anyway). */
static locale_t enter_c_locale(void)
{
	pthread_once(&c_locale_once, make_c_locale);
	return c_locale ? uselocale(c_locale) : (locale_t)0;
}

static void leave_c_locale(locale_t old)
{
	if (old)
		uselocale(old);
}

/* ---- Go's integer and float syntax ---- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int digit_value(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	return 99;
}

/* strconv.ParseUint(s, base, 64); base 0 takes Go's prefixes (0x, 0o, 0b,
 * and a leading 0 for octal). */
static bool go_parse_uint(const char *s, size_t len, int base, uint64_t *out)
{
	if (len == 0)
		return false;
	if (base == 0) {
		base = 10;
		if (s[0] == '0') {
			char c = len >= 3 ? (char)(s[1] | 0x20) : 0;
			base = c == 'b' ? 2 : c == 'o' ? 8 : c == 'x' ? 16 : 8;
			size_t skip = c == 'b' || c == 'o' || c == 'x' ? 2 : 1;
			s += skip;
			len -= skip;
		}
	}
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		int d = digit_value(s[i]);
		if (d >= base || v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return false;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	*out = v;
	return true;
}

/* strconv.ParseInt(s, base, 64). */
static bool go_parse_int_base(const char *s, size_t len, int base, int64_t *out)
{
	bool neg = len > 0 && s[0] == '-';
	size_t skip = len > 0 && (s[0] == '-' || s[0] == '+');
	uint64_t u;
	if (!go_parse_uint(s + skip, len - skip, base, &u))
		return false;
	if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
		return false;
	*out = neg ? (int64_t)(0 - u) : (int64_t)u;
	return true;
}

bool go_parse_int(const char *s, size_t len, int64_t *out)
{
	return go_parse_int_base(s, len, 10, out);
}

static bool span_digits(const char *s, size_t len, size_t *i)
{
	size_t start = *i;
	while (*i < len && is_digit(s[*i]))
		(*i)++;
	return *i > start;
}

static bool equal_fold(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word);
	if (len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((s[i] | 0x20) != word[i])
			return false;
	return true;
}

/* strconv.ParseFloat(s, 64) for what sops meets: decimal forms with an
 * optional exponent, inf, infinity and nan. Go also reads hexadecimal
 * floats ("0x1p-2"), which sops never writes: refused. Out of range (Go's
 * ErrRange, an error for sops) is refused too. */
bool go_parse_float(const char *s, size_t len, double *out)
{
	size_t i = 0;
	bool neg = false;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	if (equal_fold(s + i, len - i, "inf") || equal_fold(s + i, len - i, "infinity")) {
		*out = neg ? -INFINITY : INFINITY;
		return true;
	}
	if (i == 0 && equal_fold(s, len, "nan")) {
		*out = NAN;
		return true;
	}
	bool mantissa = span_digits(s, len, &i);
	if (i < len && s[i] == '.') {
		i++;
		mantissa |= span_digits(s, len, &i);
	}
	if (!mantissa)
		return false;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (!span_digits(s, len, &i))
			return false;
	}
	if (i != len)
		return false;
	char copy[64], *text = copy, *heap = NULL;
	if (len >= sizeof(copy) && !(text = heap = malloc(len + 1)))
		return false;
	memcpy(text, s, len);
	text[len] = 0;
	locale_t old = enter_c_locale();
	errno = 0;
	char *end;
	double v = strtod(text, &end);
	int e = errno;
	leave_c_locale(old);
	bool ok = end == text + len && !(e == ERANGE && isinf(v));
	vf_wipe(text, len);
	free(heap);
	if (ok)
		*out = v;
	return ok;
}

bool go_parse_bool(const char *s, size_t len, bool *out)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
		if (strlen(yes[i]) == len && memcmp(s, yes[i], len) == 0) {
			*out = true;
			return true;
		}
		if (strlen(no[i]) == len && memcmp(s, no[i], len) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* ---- yaml.v3's resolution of plain scalars ---- */

static bool one_of(const char *s, size_t len, const char *const *words)
{
	for (; *words; words++)
		if (strlen(*words) == len && memcmp(s, *words, len) == 0)
			return true;
	return false;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ (yaml.v3's
 * yamlStyleFloat). */
static bool yaml_style_float(const char *s, size_t len)
{
	size_t i = 0;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		i++;
	if (i < len && s[i] == '.') {
		i++;
		if (!span_digits(s, len, &i))
			return false;
	} else {
		if (!span_digits(s, len, &i))
			return false;
		if (i < len && s[i] == '.') {
			i++;
			span_digits(s, len, &i);
		}
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (!span_digits(s, len, &i))
			return false;
	}
	return i == len;
}

static void set_float(struct node *n, double v)
{
	n->kind = NODE_FLOAT;
	n->v.f = v;
}

/* Numbers: yaml.v3 drops '_' and tries ParseInt(s, 0, 64), ParseUint (a
 * uint64 sops cannot walk), then ParseFloat when the text looks like a
 * YAML float; a text starting with '.' goes to ParseFloat directly. */
static enum vf_code resolve_number(const char *s, size_t len, struct node *n)
{
	if (s[0] == '.') {
		double f;
		if (go_parse_float(s, len, &f))
			set_float(n, f);
		return VF_OK;
	}
	char small[128], *buf = len < sizeof(small) ? small : malloc(len + 1);
	if (!buf)
		return VF_E_NOMEM;
	size_t k = 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] != '_')
			buf[k++] = s[i];
	buf[k] = 0;
	int64_t i64;
	uint64_t u64;
	double f;
	enum vf_code rc = VF_OK;
	if (go_parse_int_base(buf, k, 0, &i64)) {
		n->kind = NODE_INT;
		n->v.i = i64;
	} else if (go_parse_uint(buf, k, 0, &u64)) {
		rc = VF_E_ARG;
	} else if (yaml_style_float(buf, k) && go_parse_float(buf, k, &f)) {
		set_float(n, f);
	}
	if (buf != small)
		free(buf);
	return rc;
}

enum vf_code yaml_resolve_plain(const char *s, size_t len, struct node *n)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	static const char *const trues[] = {"true", "True", "TRUE", NULL};
	static const char *const falses[] = {"false", "False", "FALSE", NULL};
	static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
	static const char *const neg_infs[] = {"-.inf", "-.Inf", "-.INF", NULL};
	static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
	n->kind = NODE_STRING;
	if (one_of(s, len, nulls))
		n->kind = NODE_NULL;
	else if (one_of(s, len, trues) || one_of(s, len, falses)) {
		n->kind = NODE_BOOL;
		n->v.b = s[0] == 't' || s[0] == 'T';
	} else if (one_of(s, len, infs))
		set_float(n, INFINITY);
	else if (one_of(s, len, neg_infs))
		set_float(n, -INFINITY);
	else if (one_of(s, len, nans))
		set_float(n, NAN);
	else if (len == 2 && memcmp(s, "<<", 2) == 0)
		return VF_E_ARG;
	else if (is_digit(s[0]) || s[0] == '+' || s[0] == '-' || s[0] == '.')
		return resolve_number(s, len, n);
	return VF_OK;
}

/* ---- Go's float printing ---- */

/* The shortest decimal digits that read back as v (v finite, > 0): the
 * first precision at which printf's correctly rounded digits round-trip,
 * which are the digits Go's shortest formatting chooses. *dp is where the
 * decimal point goes: v = 0.d1d2... * 10^dp. */
static void shortest_digits(double v, char digits[20], int *nd, int *dp)
{
	char buf[40];
	for (int prec = 0; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	char *e = strchr(buf, 'e');
	int n = 0;
	for (char *c = buf; c < e; c++)
		if (is_digit(*c))
			digits[n++] = *c;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = 0;
	*nd = n;
	*dp = atoi(e + 1) + 1;
	vf_wipe(buf, sizeof(buf)); /* a decrypted value's digits */
}

/* Go's fmtF: digits with prec of them after the point. */
static void fmt_f(char **o, const char *d, int nd, int dp, int prec)
{
	if (dp > 0) {
		for (int i = 0; i < dp; i++)
			*(*o)++ = i < nd ? d[i] : '0';
	} else {
		*(*o)++ = '0';
	}
	if (prec > 0) {
		*(*o)++ = '.';
		for (int i = 1; i <= prec; i++) {
			int j = dp + i - 1;
			*(*o)++ = j >= 0 && j < nd ? d[j] : '0';
		}
	}
}

/* Go's fmtE: d.ddde±XX, at least two exponent digits. */
static void fmt_e(char **o, const char *d, int nd, int dp)
{
	*(*o)++ = nd ? d[0] : '0';
	if (nd > 1) {
		*(*o)++ = '.';
		for (int i = 1; i < nd; i++)
			*(*o)++ = d[i];
	}
	int exp = nd ? dp - 1 : 0;
	*(*o)++ = 'e';
	*(*o)++ = exp < 0 ? '-' : '+';
	if (exp < 0)
		exp = -exp;
	if (exp >= 100)
		*(*o)++ = (char)('0' + exp / 100);
	*(*o)++ = (char)('0' + exp / 10 % 10);
	*(*o)++ = (char)('0' + exp % 10);
}

static bool format_special(double v, enum float_style style, char *out)
{
	const char *s;
	if (isnan(v))
		s = style == FLOAT_YAML ? ".nan" : "NaN";
	else if (v > 0)
		s = style == FLOAT_YAML ? ".inf" : "+Inf";
	else
		s = style == FLOAT_YAML ? "-.inf" : "-Inf";
	if (style == FLOAT_JSON)
		return false; /* encoding/json refuses them: so does sops -d */
	strcpy(out, s);
	return true;
}

bool go_format_float(double v, enum float_style style, char out[FLOAT_TEXT_MAX])
{
	if (!isfinite(v))
		return format_special(v, style, out);
	char d[20] = "";
	int nd = 0, dp = 0;
	char *o = out;
	if (signbit(v))
		*o++ = '-';
	double a = fabs(v);
	if (a != 0) {
		locale_t old = enter_c_locale();
		shortest_digits(a, d, &nd, &dp);
		leave_c_locale(old);
	}
	bool e_form = false;
	if (style == FLOAT_YAML)
		e_form = nd && (dp - 1 < -4 || dp - 1 >= 6); /* 'g' with -1: %e decided at 6 */
	else if (style == FLOAT_JSON)
		e_form = a != 0 && (a < 1e-6 || a >= 1e21);
	if (e_form)
		fmt_e(&o, d, nd, dp);
	else
		fmt_f(&o, d, nd, dp, nd - dp > 0 ? nd - dp : 0);
	*o = 0;
	/* encoding/json writes e-7, not e-07. */
	size_t n = (size_t)(o - out);
	if (style == FLOAT_JSON && e_form && n >= 4 && out[n - 4] == 'e' && out[n - 3] == '-' &&
	    out[n - 2] == '0') {
		out[n - 2] = out[n - 1];
		out[n - 1] = 0;
	}
	vf_wipe(d, sizeof(d));
	return true;
}

/* ---- RFC 3339 ---- */

static bool two(const char *s, int *v, int max)
{
	if (!is_digit(s[0]) || !is_digit(s[1]))
		return false;
	*v = (s[0] - '0') * 10 + (s[1] - '0');
	return *v <= max;
}

static int days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : days[month - 1];
}

bool rfc3339_normalize(const char *s, size_t len, char out[26], bool *fraction)
{
	int y1, y2, mo, d, h, mi, sec, oh = 0, om = 0;
	*fraction = false;
	if (len < 20 || !two(s, &y1, 99) || !two(s + 2, &y2, 99) || s[4] != '-' ||
	    !two(s + 5, &mo, 12) || mo == 0 || s[7] != '-' || !two(s + 8, &d, 31) || d == 0 ||
	    s[10] != 'T' || !two(s + 11, &h, 23) || s[13] != ':' || !two(s + 14, &mi, 59) ||
	    s[16] != ':' || !two(s + 17, &sec, 59))
		return false;
	if (d > days_in_month(y1 * 100 + y2, mo))
		return false;
	size_t i = 19;
	if (s[i] == '.') {
		size_t start = ++i;
		while (i < len && is_digit(s[i]))
			i++;
		if (i == start)
			return false;
		*fraction = true;
	}
	if (i < len && s[i] == 'Z') {
		i++;
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && two(s + i + 1, &oh, 23) &&
		   s[i + 3] == ':' && two(s + i + 4, &om, 59)) {
		i += 6;
	} else {
		return false;
	}
	if (i != len)
		return false;
	memcpy(out, s, 19);
	if (oh == 0 && om == 0) {
		strcpy(out + 19, "Z");
	} else {
		memcpy(out + 19, s + len - 6, 6); /* checked above: [+-]HH:MM */
		out[25] = 0;
	}
	return true;
}

/* ---- ENC[] ---- */

/* In the order of enum vf_sops_enc_type. */
static const char *const enc_types[] = {"str", "int", "float", "bool", "bytes", "time",
					"comment"};

const char *vf_sops_enc_type_name(enum vf_sops_enc_type type)
{
	return (unsigned)type < sizeof(enc_types) / sizeof(*enc_types) ? enc_types[type] : "?";
}

/* The text of one field: after "name:" (which must come next at *i) up to
 * stop. */
static bool field(const char *s, size_t len, size_t *i, const char *name, char stop,
		  const char **value, size_t *value_len)
{
	size_t n = strlen(name);
	if (len - *i < n || memcmp(s + *i, name, n) != 0)
		return false;
	size_t start = *i + n, end = start;
	while (end < len && s[end] != stop && s[end] != ',' && s[end] != ']')
		end++;
	if (end == len || s[end] != stop || end == start)
		return false;
	*value = s + start;
	*value_len = end - start;
	*i = end + 1;
	return true;
}

static enum vf_code fixed_b64(const char *what, const char *b64, size_t b64_len, uint8_t *out,
			      size_t want, struct vf_error *err)
{
	uint8_t buf[VF_AES_GCM_MAX_NONCE_LEN + 3];
	size_t got = 0;
	if (b64_len > ((sizeof(buf) + 2) / 3) * 4 ||
	    !vf_b64_decode(b64, b64_len, buf, sizeof(buf), &got, true)) {
		if (b64_len <= ((sizeof(buf) + 2) / 3) * 4)
			return vf_fail(err, VF_E_ARG,
				       "ENC[] %s is not base64 (expected standard base64 with "
				       "padding)", what);
		return vf_fail(err, VF_E_ARG, "ENC[] %s is %zu characters long (expected %zu bytes)",
			       what, b64_len, want);
	}
	if (got != want)
		return vf_fail(err, VF_E_ARG, "ENC[] %s is %zu bytes (expected %zu)", what, got, want);
	memcpy(out, buf, want);
	return VF_OK;
}

enum vf_code sops_enc_parse_into(const char *s, size_t len, struct vf_sops_enc *e,
				 uint8_t *buf, size_t cap, struct vf_error *err)
{
	static const char prefix[] = "ENC[AES256_GCM,";
	const char *data, *iv, *tag, *type;
	size_t data_len, iv_len, tag_len, type_len, i = strlen(prefix);
	memset(e, 0, sizeof(*e));
	if (len < i || memcmp(s, prefix, i) != 0 || !field(s, len, &i, "data:", ',', &data, &data_len) ||
	    !field(s, len, &i, "iv:", ',', &iv, &iv_len) ||
	    !field(s, len, &i, "tag:", ',', &tag, &tag_len) ||
	    !field(s, len, &i, "type:", ']', &type, &type_len) || i != len)
		return vf_fail(err, VF_E_ARG,
			       "not of the form ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]");
	size_t got = 0;
	if (!vf_b64_decode(data, data_len, buf, cap, &got, true))
		return vf_fail(err, VF_E_ARG,
			       "ENC[] data is not base64 (expected standard base64 with padding)");
	enum vf_code rc = fixed_b64("iv", iv, iv_len, e->iv, VF_SOPS_IV_LEN, err);
	if (rc == VF_OK)
		rc = fixed_b64("tag", tag, tag_len, e->tag, VF_SOPS_TAG_LEN, err);
	if (rc != VF_OK)
		return rc;
	size_t t = 0;
	while (t < sizeof(enc_types) / sizeof(*enc_types) &&
	       !(strlen(enc_types[t]) == type_len && memcmp(enc_types[t], type, type_len) == 0))
		t++;
	if (t == sizeof(enc_types) / sizeof(*enc_types))
		return vf_fail(err, VF_E_ARG,
			       "ENC[] type \"%.*s\" is unknown (expected str, int, float, bytes, "
			       "bool, time or comment)", (int)(type_len > 20 ? 20 : type_len), type);
	e->type = (enum vf_sops_enc_type)t;
	e->data = buf;
	e->data_len = got;
	return VF_OK;
}

enum vf_code vf_sops_enc_parse(const char *s, size_t len, struct vf_sops_enc *out,
			       struct vf_error *err)
{
	uint8_t *buf = malloc(len / 4 * 3 + 3);
	if (!buf)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = sops_enc_parse_into(s, len, out, buf, len / 4 * 3 + 3, err);
	if (rc != VF_OK) {
		free(buf);
		memset(out, 0, sizeof(*out));
	}
	return rc;
}

void vf_sops_enc_clear(struct vf_sops_enc *e)
{
	free((void *)e->data);
	memset(e, 0, sizeof(*e));
}

enum vf_code vf_sops_enc_open(const struct vf_sops_enc *e, const uint8_t key[VF_SOPS_DATA_KEY_LEN],
			      const char *aad, size_t aad_len, uint8_t *out, struct vf_error *err)
{
	return vf_aes256gcm_open(key, e->iv, VF_SOPS_IV_LEN, (const uint8_t *)aad, aad_len, e->data,
				 e->data_len, e->tag, out, err);
}
