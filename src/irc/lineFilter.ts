/** Recognising raw IRC lines cheaply, before they are parsed. */

/** Lines about other users and channel listings that a quiet connection never needs. */
const ABOUT_OTHERS = new Set(["JOIN", "PART", "QUIT", "NICK", "AWAY", "ACCOUNT", "CHGHOST", "SETNAME", "MODE", "TOPIC"]);
const LISTINGS = new Set(["353", "366", "352", "315", "354", "329", "332", "333"]);

/** True for a raw line that is a listing, or a membership change of someone other than `ownNick`. */
export function isAboutOthers(line: string, ownNick: string): boolean {
  let i = 0;
  if (line.charCodeAt(0) === 64 /* @ tags */) {
    i = line.indexOf(" ") + 1;
    if (i === 0) return false;
  }
  if (line.charCodeAt(i) !== 58 /* : prefix */) return false;
  const afterPrefix = line.indexOf(" ", i);
  if (afterPrefix < 0) return false;
  const commandEnd = line.indexOf(" ", afterPrefix + 1);
  const command = line.slice(afterPrefix + 1, commandEnd < 0 ? undefined : commandEnd).trimEnd();
  if (LISTINGS.has(command)) return true;
  if (!ABOUT_OTHERS.has(command)) return false;
  const bang = line.indexOf("!", i);
  const nickEnd = bang > 0 && bang < afterPrefix ? bang : afterPrefix;
  return line.slice(i + 1, nickEnd) !== ownNick;
}
