// A question the user answered no: the command stops, changing nothing, and exits 1 ("cancelled"),
// as terraform does. Without a terminal no question is asked, and the missing --yes is bad input (2).

import { ThinlayerError } from '../errors/index.ts';

export class CancelledError extends ThinlayerError {
  readonly code = 'E_NOT_CONFIRMED';
  readonly exitCode = 1;
  constructor(what: string) {
    super(`cancelled: ${what} was not confirmed; nothing was changed`);
    this.name = 'CancelledError';
  }
}
