import assert from 'node:assert/strict';

import { topicLevel, topicProblem } from '../src/util/topicLevel';

describe('util/topicLevel: camera ids and names as MQTT topic levels', () => {
  it('keeps plain names, inner spaces and any script as they are', () => {
    for (const name of ['Ann', 'ann', 'Ann Lee', 'Zoë', '李雷', "O'Brien", 'a-b_c.d', 'x$y']) {
      assert.equal(topicLevel(name), name);
    }
  });

  it('escapes separators, wildcards, %, control characters and spaces at the ends', () => {
    assert.equal(topicLevel('Ann '), 'Ann%20');
    assert.equal(topicLevel(' Ann'), '%20Ann');
    assert.equal(topicLevel('front/door'), 'front%2Fdoor');
    assert.equal(topicLevel('a+b#c'), 'a%2Bb%23c');
    assert.equal(topicLevel('100%'), '100%25');
    assert.equal(topicLevel('Ann\u0000Lee'), 'Ann%00Lee');
    assert.equal(topicLevel('tab\there'), 'tab%09here');
    assert.equal(topicLevel('no\u00a0break'), 'no%C2%A0break');
    assert.equal(topicLevel('rtl\u202eevil'), 'rtl%E2%80%AEevil');
    assert.equal(topicLevel(' '), '%20');
  });

  it('never gives two different texts one level, and every level is a topic a broker takes', () => {
    const names = [
      'Ann',
      'Ann ',
      ' Ann',
      'ann',
      'Ann  ',
      'Ann%20',
      'Ann%2520',
      'Ann\u0000',
      'Ann\u00a0',
      'Ann\t',
      'a/b',
      'a_b',
      'a%2Fb',
      'a+b',
      'a#b',
      '_',
      '%',
      '%%',
      '\ud800',
      '\udc00',
      '\ufffd',
      'Zoë',
      'Zoe\u0308',
    ];
    const levels = names.map(topicLevel);
    assert.equal(new Set(levels).size, names.length, JSON.stringify(levels));
    for (const level of levels) {
      assert.equal(topicProblem(`faceflow/person/${level}`), undefined, level);
      assert.doesNotMatch(level, /[/+#]|^ | $/);
    }
  });

  it('has no level for an empty text', () => {
    assert.throws(() => topicLevel(''), /non-empty/);
  });

  it('says why a topic cannot be published to', () => {
    assert.equal(topicProblem('faceflow/door/recognized'), undefined);
    assert.match(topicProblem('') ?? '', /empty/);
    assert.match(topicProblem('a/+/b') ?? '', /wildcard/);
    assert.match(topicProblem('a/#') ?? '', /wildcard/);
    assert.match(topicProblem('$SYS/x') ?? '', /\$/);
    assert.match(topicProblem('a\u0000b') ?? '', /U\+0000/);
    assert.match(topicProblem('a\u007fb') ?? '', /U\+007F/);
    assert.match(topicProblem('a\u0085b') ?? '', /U\+0085/);
    assert.match(topicProblem('a\uffffb') ?? '', /U\+FFFF/);
    assert.match(topicProblem('a\ud800b') ?? '', /U\+D800/);
    assert.match(topicProblem('x'.repeat(65_536)) ?? '', /65535 bytes/);
    assert.equal(topicProblem('x'.repeat(65_535)), undefined);
  });
});
