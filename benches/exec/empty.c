/* The practical floor for any program linked to glibc: start-up and exit, nothing else.
 * Built with `gcc -Os -static`, as kubemem is linked statically. */
int main(void) { return 0; }
