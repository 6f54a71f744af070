/**
 * The semantic cache's verifier on each kind of difference. Every veto has a pair that only it
 * catches (the reason is asserted, so the test fails if that veto is removed: another would have to
 * name it, and none does), and pairs that must pass show the vetoes do not fire on mere rewording.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { questionSignature, vetoReason, type VetoReason } from '../../host/cache/verify.ts';

/** The verdict for serving `cached`'s answer to `asked`, checked to be the same both ways round. */
function verdict(cached: string, asked: string): VetoReason | undefined {
  const forward = vetoReason(questionSignature(cached), questionSignature(asked));
  const backward = vetoReason(questionSignature(asked), questionSignature(cached));
  assert.is(backward, forward, `symmetric: ${cached} / ${asked}`);
  return forward;
}

function expectVeto(reason: VetoReason, pairs: readonly [string, string][]): void {
  for (const [cached, asked] of pairs) assert.is(verdict(cached, asked), reason, `${JSON.stringify(cached)} vs ${JSON.stringify(asked)}`);
}

function expectPass(pairs: readonly [string, string][]): void {
  for (const [cached, asked] of pairs) assert.is(verdict(cached, asked), undefined, `${JSON.stringify(cached)} vs ${JSON.stringify(asked)}`);
}

test('numbers: digits, thousands, versions, suffixes and ordinals are compared by value', () => {
  expectVeto('number', [
    ['How long does delivery take for 3 bikes?', 'How long does delivery take for 4 bikes?'],
    ['Is there a limit of 1,000 requests?', 'Is there a limit of 10,000 requests?'],
    ['Does LOAD_HU exist in v2.10.0?', 'Does LOAD_HU exist in v2.11.0?'],
    ['Can I use more than 50k models?', 'Can I use more than 60k models?'],
    ['What happens on the 3rd attempt?', 'What happens on the 4th attempt?'],
    ['Do steps 1 and 2 run first?', 'Do steps 1 and 1 run first?'],
    ['What is the limit?', 'What is the limit of 5?'],
  ]);
  expectPass([
    ['Is there a limit of 1,000 requests?', 'Is there a limit of 1000 requests?'],
    ['Can I use more than 50k models?', 'Can I use more than 50,000 models?'],
    ['Does it exist in v2.10.0?', 'Does it exist in version 2.10.0?'],
    ['Can I use 50 thousand models?', 'Can I use 50000 models?'],
  ]);
});

test('numbers: written numbers and ordinals', () => {
  expectVeto('number', [
    ['Delivery takes three days?', 'Delivery takes five days?'],
    ['What should I expect on my first day?', 'What should I expect on my second day?'],
    ['What should I expect on my first day?', 'What should I expect on my last day?'],
    ['Can I buy twenty-one tickets?', 'Can I buy twenty-two tickets?'],
  ]);
  expectPass([
    ['Delivery takes three days?', 'Delivery takes 3 days?'],
    ['Can I buy twenty-one tickets?', 'Can I buy 21 tickets?'],
    ['Does it cost two thousand five hundred euros?', 'Does it cost 2,500 euros?'],
    ['What happens on the third attempt?', 'What happens on the 3rd attempt?'],
    // "one" as a pronoun is not a count.
    ['Which one is better?', 'Which is better?'],
    ['Is Gradio one of the libraries?', 'Is Gradio one of the supported libraries?'],
  ]);
});

test('numbers: roman numerals, a lone letter only after a word that numbers things', () => {
  expectVeto('number', [
    ['How do I prepare for CFA level I?', 'How do I prepare for CFA level 3?'],
    ['How do I prepare for CFA level I?', 'How do I prepare for CFA level III?'],
    ['Who won World War II?', 'Who won World War I?'],
    ['What is in part iv?', 'What is in part v?'],
  ]);
  expectPass([
    ['How do I prepare for CFA level I?', 'How do I prepare for CFA level 1?'],
    ['How do I prepare for CFA level III?', 'How do I prepare for the third level of the CFA?'],
    ['Who won World War II?', 'Who won the second world war?'],
    // "I" the pronoun is no number.
    ['Can I return a bike?', 'Can I return my bike?'],
  ]);
});

test('negation: not, n’t, never, no, without, cannot; one more or one fewer is a different question', () => {
  expectVeto('negation', [
    ['Can I return a bike I rode?', "Can I return a bike I haven't ridden?"],
    ['Is express delivery available on Sunday?', 'Is express delivery not available on Sunday?'],
    ['Does the cache work offline?', 'Does the cache never work offline?'],
    ['Can I ride it without a helmet?', 'Can I ride it with a helmet?'],
    ['Why can I log in?', 'Why cannot I log in?'],
    ['No, LOAD_HU doesn’t exist in v2.10.0.', 'No, LOAD_HU does exist in v2.10.0.'],
  ]);
  expectPass([
    ["Why doesn't the upload work?", 'Why does the upload not work?'],
    ['Why can’t I log in?', 'Why cannot I log in?'],
  ]);
});

test('direction: two words of one opposed pair, one in each question', () => {
  expectVeto('direction', [
    ['Is PyTorch faster than TensorFlow?', 'Is PyTorch slower than TensorFlow?'],
    ['How do I upload a dataset to the Hub?', 'How do I download a dataset to the Hub?'],
    ['Should I stretch before a long ride?', 'Should I stretch after a long ride?'],
    ['How do I enable the cache?', 'How can I disable caching?'],
    ['How does the cache work?', 'Why does the cache work?'],
  ]);
  expectPass([
    // One side only is not a flip: "more" is everyday rewording here.
    ['Can I use over 100 models?', 'Can I use more than 100 models at once?'],
    ['Is PyTorch faster than TensorFlow?', 'Is PyTorch quicker than TensorFlow on a small machine?'],
  ]);
});

test('names: capitals inside a sentence, all capitals, inner capitals, letters with digits, identifiers', () => {
  expectVeto('name', [
    // A name dropped (no in-place swap: the questions differ in length).
    ['What should I expect on my first day at CMS Energy?', 'What should I expect on my first day at the energy company?'],
    ['How do I deploy on Peabody servers?', 'How can I deploy on the servers?'],
    ['Does Transformers run on PyTorch?', 'Does Transformers run on the framework?'],
    ['Can I store it in S3 buckets?', 'Can I store it in buckets?'],
    ['What does with_format do for arrays?', 'What does the format option do for arrays?'],
    // Still mentioned elsewhere, but once instead of twice.
    ['Cast the Audio column of audio files to the Audio feature?', 'Cast the Audio column of audio files to the video feature?'],
    // A paraphrase on top of the swap.
    ['What should I expect on my first day at CMS Energy?', 'What is day one at Peabody Energy like?'],
  ]);
  expectPass([
    ['How do I use Hugging Face datasets?', 'How do I use HuggingFace datasets?'],
    ['Does Transformers run on PyTorch?', 'does transformers run on pytorch?'],
    ['Hugging Face Hub is a platform to host Git-based models, datasets, and Spaces.', 'Hugging Face Hub serves as a repository for Git-based models, datasets, and Spaces.'],
  ]);
});

test('names: rare words count as names when typed in lower case (common-word list)', () => {
  expectVeto('name', [
    ['should i invest in amazon or in bonds', 'should i invest in bonds'],
    ['what is the best way to learn kubernetes quickly', 'what is the best way to learn quickly'],
  ]);
  // Common words are everyday vocabulary: "energy" may come and go.
  expectPass([['what does an energy company do', 'what does a company do']]);
});

test('swap: one content word swapped in place for another, everything else the same', () => {
  expectVeto('swap', [
    ['Accelerate lets you easily train and use PyTorch models.', 'Accelerate lets you easily test and use PyTorch models.'],
    ['How do I cancel my order?', 'How do I track my order?'],
    ['should i invest in apple', 'should i invest in oranges'],
    // The price of failing closed: a synonym swapped in place is refused too.
    ['Can I use over 100 models?', 'Can I use more than 100 models?'],
  ]);
  expectPass([
    // Word order, stop words and punctuation are not swaps.
    ['How much does express delivery cost?', 'How much does the express delivery cost?'],
    ['When is the Sunday opening time?', 'On Sunday, when is the opening time'],
  ]);
});

test('the examples from the adversarial review are all refused; true paraphrases pass', () => {
  assert.ok(verdict('What is it like on the first day at CMS Energy?', 'What is it like on the first day at Peabody Energy?') !== undefined);
  assert.ok(verdict('How should I study for CFA level I?', 'How should I study for CFA level 3?') !== undefined);
  assert.ok(verdict('Should I invest in Amazon?', 'Should I invest in Airbnb?') !== undefined);
  expectPass([
    ['What is it like on the first day at CMS Energy?', 'What is it like on the first day at CMS Energy, really?'],
    ['How should I study for CFA level I?', 'How should I study for the CFA level 1?'],
    ['Should I invest in Amazon?', 'Should I invest in Amazon now?'],
  ]);
});

test('a signature depends on the text alone', () => {
  const text = 'How do I prepare for CFA level III in 2 months without a tutor?';
  const a = questionSignature(text);
  const b = questionSignature(text);
  assert.equal({ ...a, poles: [...a.poles], counts: [...a.counts], present: [...a.present] }, { ...b, poles: [...b.poles], counts: [...b.counts], present: [...b.present] });
  assert.is(a.numbers, '2 3');
  assert.is(a.negations, 1);
});

test.run();
