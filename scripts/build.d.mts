export function buildBundle(): Promise<void>;
