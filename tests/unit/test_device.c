/* placeholder: being written */
#include <stdio.h>
int main(void)
{
	fprintf(stderr, "test_device: not written yet\n");
	return 1;
}
