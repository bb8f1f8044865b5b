import { describe, expect, it } from 'vitest';
import { groupSecret, recoveryCodesText, svgDataUrl } from './SecuritySection';

describe('two-step sign-in helpers', () => {
  it('turns the QR code SVG into a data: URL for an <img>, never markup', () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><text>é</text></svg>';
    const url = svgDataUrl(svg);
    expect(url).toMatch(/^data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+$/);
    const decoded = new TextDecoder().decode(Uint8Array.from(atob(url.split(',')[1]), (c) => c.charCodeAt(0)));
    expect(decoded).toBe(svg);
  });

  it('groups the secret in fours for typing, and writes the codes file', () => {
    expect(groupSecret('ABCDEFGHIJKLMNOPQ')).toBe('ABCD EFGH IJKL MNOP Q');
    const text = recoveryCodesText(['aaaa-bbbb-cccc-dddd', 'eeee-ffff-gggg-hhhh'], 'ada@example.com');
    expect(text).toContain('ada@example.com');
    expect(text.split('\n')).toContain('eeee-ffff-gggg-hhhh');
  });
});
