/**
 * A failure on the IRC side, with a code for logs and metrics, a message fit to show the
 * Matrix user, and whether retrying blindly would be wrong (banned, bad key, bad password).
 */
export class IrcFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly fatal = false,
  ) {
    super(message);
    this.name = "IrcFailure";
  }
}
