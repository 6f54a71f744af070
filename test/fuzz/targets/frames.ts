/**
 * Chat frame decoding (host/transport/frames.ts `parseClientFrame`), as a client holding a tenant's
 * key or ticket could send frames: arbitrary bytes as binary (msgpack) and as text (JSON) frames,
 * valid frames mutated byte by byte, and structured near-valid frames — right keys with wrong types,
 * values one past their limits, unknown and prototype-named keys, nested junk — encoded both ways.
 *
 * Properties: parsing returns a frame that satisfies every rule of the protocol, or throws a
 * HostError PROTOCOL_BAD_ENCODING / PROTOCOL_BAD_FRAME / PROTOCOL_UNKNOWN_TYPE whose message is
 * short (an error echoes a bounded part of the input) and whose detail id, if any, is a valid id;
 * a parsed frame re-encoded either way parses to itself; a valid frame parses to itself.
 */
import fc from 'fast-check';
import type { ErrorCode } from '../../../host/errors.ts';
import { LIMITS } from '../../../host/limits.ts';
import { encodeMsgpack } from '../../../host/transport/codec.ts';
import { parseClientFrame, type ClientFrame } from '../../../host/transport/frames.ts';
import { mutatedFrom } from '../mutate.ts';
import { ensure, expectHostError, requireEqual, runCheck, type FuzzTarget } from '../target.ts';

const CODES: readonly ErrorCode[] = ['PROTOCOL_BAD_ENCODING', 'PROTOCOL_BAD_FRAME', 'PROTOCOL_UNKNOWN_TYPE'];
/** Longest error message a frame may provoke: it quotes at most a few short, cut pieces of the input. */
const ERROR_MESSAGE_CHARS_MAX = 300;

/** One input: the bytes of a frame and whether it came as a binary frame. */
interface FrameInput {
  data: Uint8Array;
  isBinary: boolean;
}

const textEncoder = new TextEncoder();

function encode(value: unknown, isBinary: boolean): Uint8Array {
  return isBinary ? encodeMsgpack(value) : textEncoder.encode(JSON.stringify(value) ?? 'null');
}

/** Strings with no lone surrogate (UTF-8 cannot carry one, so no codec round-trips it). */
const wellFormed = (options: { minLength?: number; maxLength: number }): fc.Arbitrary<string> =>
  fc.string({ unit: 'binary', ...options }).filter((text) => text.length >= (options.minLength ?? 0) && text.length <= options.maxLength);

/** A string of exactly `length` characters, cheaply: one generated character repeated. */
const ofLength = (length: number): fc.Arbitrary<string> => fc.string({ minLength: 1, maxLength: 1 }).map((char) => char.repeat(length));

const validId = fc.oneof(wellFormed({ minLength: 1, maxLength: 16 }), ofLength(LIMITS.askIdCharsMax));
const validText = fc
  .oneof(wellFormed({ minLength: 1, maxLength: 200 }), ofLength(LIMITS.askTextCharsMax).map((text) => `q${text.slice(1)}`))
  .filter((text) => text.trim().length > 0 && text.length <= LIMITS.askTextCharsMax);

/** Frames that follow every rule. */
const validFrame: fc.Arbitrary<ClientFrame> = fc.oneof(
  fc.constant({ type: 'ping' as const }),
  fc.record({ type: fc.constant('ask' as const), id: validId, text: validText }),
  fc.record(
    { type: fc.constant('feedback' as const), id: validId, rating: fc.constantFrom(1 as const, -1 as const), comment: wellFormed({ maxLength: 64 }) },
    { requiredKeys: ['type', 'id', 'rating'] },
  ),
);

/** Keys a careless parser trips over: the protocol's own, and the names objects inherit. */
const trickyKey = fc.constantFrom('type', 'id', 'text', 'rating', 'comment', '__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'length', '');
/** Any value, with objects whose keys include the tricky ones. */
const junk: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.anything({ maxDepth: 2, maxKeys: 4 }),
    fc.dictionary(fc.oneof(trickyKey, fc.string({ maxLength: 8 })), tie('value'), { maxKeys: 3 }),
  ),
})).value;

/** Values just inside, at and past each limit, and of each wrong type. */
const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  validId,
  validText,
  fc.constantFrom('', ' ', '\t\n', 0, 1, -1, 2, 1.5, -0, Number.NaN, true, false, null),
  ofLength(LIMITS.askIdCharsMax + 1),
  ofLength(LIMITS.askTextCharsMax + 1),
  ofLength(LIMITS.feedbackCommentCharsMax),
  ofLength(LIMITS.feedbackCommentCharsMax + 1),
  fc.string({ unit: 'binary', maxLength: 40 }),
  junk,
);

/** Frames that get one or more things wrong (or by chance nothing). */
const nearValidFrame: fc.Arbitrary<unknown> = fc.oneof(
  fc
    .tuple(
      fc.record(
        {
          type: fc.oneof(fc.constantFrom('ask', 'feedback', 'ping', 'pong', 'Ask', 'ask ', ''), fieldValue),
          id: fieldValue,
          text: fieldValue,
          rating: fieldValue,
          comment: fieldValue,
        },
        { requiredKeys: [] },
      ),
      fc.dictionary(fc.oneof(trickyKey, fc.string({ maxLength: 12 })), fieldValue, { maxKeys: 2 }),
      fc.boolean(),
    )
    // Extra keys go first, so a protocol key among them is overridden and an unknown one stays.
    .map(([frame, extra, withExtra]) => (withExtra ? { ...extra, ...frame } : frame)),
  junk,
);

const frameInput: fc.Arbitrary<FrameInput> = fc.oneof(
  fc.record({ data: fc.uint8Array({ maxLength: 256 }), isBinary: fc.boolean() }),
  fc.tuple(nearValidFrame, fc.boolean(), fc.boolean()).map(([frame, encodeBinary, isBinary]) => ({ data: encode(frame, encodeBinary), isBinary })),
  fc.tuple(validFrame, fc.boolean()).chain(([frame, isBinary]) => mutatedFrom(encode(frame, isBinary)).map((data) => ({ data, isBinary }))),
);

/** Asserts `frame` satisfies every rule a parsed frame must. */
function checkParsed(frame: ClientFrame): void {
  const keys = Object.keys(frame).sort();
  switch (frame.type) {
    case 'ping':
      requireEqual(keys, ['type'], 'ping keys');
      return;
    case 'ask':
      requireEqual(keys, ['id', 'text', 'type'], 'ask keys');
      ensure(typeof frame.text === 'string' && frame.text.trim().length > 0 && frame.text.length <= LIMITS.askTextCharsMax, `ask.text out of its rules: ${frame.text.length} chars`);
      break;
    case 'feedback':
      ensure(frame.rating === 1 || frame.rating === -1, 'feedback.rating is not ±1');
      ensure(frame.comment === undefined || (typeof frame.comment === 'string' && frame.comment.length <= LIMITS.feedbackCommentCharsMax), 'feedback.comment out of its rules');
      ensure(keys.every((key) => ['comment', 'id', 'rating', 'type'].includes(key)), `feedback keys ${keys.join(',')}`);
      break;
    default:
      ensure(false, `parsed a frame of type ${String((frame as { type: unknown }).type)}`);
  }
  ensure(typeof frame.id === 'string' && frame.id.length >= 1 && frame.id.length <= LIMITS.askIdCharsMax, 'id out of its rules');
}

/** The property for one input. */
function checkInput(input: FrameInput): ClientFrame | undefined {
  let frame: ClientFrame;
  try {
    frame = parseClientFrame(input.data, input.isBinary);
  } catch (error: unknown) {
    const refused = expectHostError('frames', error, CODES);
    if (refused !== undefined) {
      ensure(refused.message.length <= ERROR_MESSAGE_CHARS_MAX, `the error message is ${refused.message.length} characters: it echoes too much of the frame`);
      const id = refused.detail?.['id'];
      ensure(id === undefined || (typeof id === 'string' && id.length <= LIMITS.askIdCharsMax), 'the error names an id that is not a valid one');
    }
    return undefined;
  }
  checkParsed(frame);
  for (const isBinary of [true, false]) requireEqual(parseClientFrame(encode(frame, isBinary), isBinary), frame, `re-encoded as ${isBinary ? 'msgpack' : 'JSON'}`);
  return frame;
}

export const framesTarget: FuzzTarget = {
  name: 'frames',
  summary: 'parseClientFrame over arbitrary bytes, mutated valid frames and near-valid frames, msgpack and JSON',
  testRuns: 1_500,
  async open() {
    const property = fc.asyncProperty(
      fc.oneof({ arbitrary: frameInput, weight: 4 }, { arbitrary: fc.tuple(validFrame, fc.boolean()).map(([frame, isBinary]) => ({ frame, isBinary })), weight: 1 }),
      async (input) => {
        if ('frame' in input) {
          // Spread: fast-check's records may lack Object's prototype, which a deep comparison sees.
          requireEqual(checkInput({ data: encode(input.frame, input.isBinary), isBinary: input.isBinary }), { ...input.frame }, 'a valid frame');
        } else {
          checkInput(input);
        }
      },
    );
    return { check: (params) => runCheck(property, params), close: async () => undefined };
  },
};
