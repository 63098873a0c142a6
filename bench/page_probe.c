/* page_probe: what the first touch of a page costs on this machine, in
 * microseconds (bench/small_bench.sh prints it beside each command's page
 * faults). A short run of the tools touches a few hundred pages, most of
 * them before main: libcrypto's relocations alone write to about a
 * hundred. On bare metal or a VM with nested paging a first touch is well
 * under a microsecond; on a VM whose hypervisor keeps shadow page tables
 * each one is a trip to the hypervisor, and the pages can be half of a
 * small run's time. Measured on anonymous memory: mmap, write one byte to
 * each of PAGES pages, munmap; the median of ROUNDS rounds. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGES 256
#define ROUNDS 9

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		return 1;
	size_t step = (size_t)page, len = PAGES * step;
	double per_page[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			perror("page_probe: mmap");
			return 1;
		}
		double start = now_us();
		for (size_t i = 0; i < PAGES; i++)
			p[i * step] = 1;
		per_page[r] = (now_us() - start) / PAGES;
		munmap((void *)p, len);
	}
	qsort(per_page, ROUNDS, sizeof(per_page[0]), by_value);
	printf("%.2f\n", per_page[ROUNDS / 2]);
	return 0;
}
