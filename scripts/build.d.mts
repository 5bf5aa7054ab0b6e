export function buildBundle(opts?: { entry?: string; outfile?: string; sourcemap?: boolean }): Promise<void>;
