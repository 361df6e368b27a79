/*
 * hvmm's glue between the Hyper-V emulation and the portable VMBus server
 * (see vmbus_glue.h). Placeholder until the VMBus server lands: no VMBus is
 * created and every request reports -ENODEV.
 */
#include "core/vmbus_glue.h"

#include <errno.h>

#include "core/vm.h"

int vmbus_glue_create(struct vm *vm)
{
	(void)vm;
	return 0;
}

void vmbus_glue_destroy(struct vm *vm)
{
	(void)vm;
}

int vmbus_glue_request_shutdown(struct vm *vm, bool reboot)
{
	(void)vm;
	(void)reboot;
	return -ENODEV;
}

bool vmbus_glue_guest_alive(struct vm *vm)
{
	(void)vm;
	return false;
}

void vmbus_glue_kvp_print(struct vm *vm, FILE *f)
{
	(void)vm;
	(void)f;
}
