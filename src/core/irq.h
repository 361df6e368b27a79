/*
 * Interrupt lines as devices see them. A device model holds a struct irq_line
 * and calls irq_line_set(); the VM wires it to the accelerator (an in-kernel
 * IOAPIC/PIC pin on KVM) or, in unit tests, to a recording fake.
 */
#ifndef HVMM_CORE_IRQ_H
#define HVMM_CORE_IRQ_H

struct irq_line {
	/* Sets the line's level (0 or 1). Must be callable from any thread. */
	void (*set)(void *opaque, unsigned gsi, int level);
	void *opaque;
	unsigned gsi;
};

static inline void irq_line_set(const struct irq_line *l, int level)
{
	if (l && l->set)
		l->set(l->opaque, l->gsi, level);
}

#endif
