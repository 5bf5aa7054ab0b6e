// The simulated kernel: see docs/simulated-kernel.md.
export { SimKernel, type SimKernelOptions } from './sim-kernel.ts';
