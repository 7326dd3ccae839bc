import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, buildUrl, errorFromResponse, messageOf, request, setUnauthorizedHandler } from '@/api/client';
import { auth, tokens, users } from '@/api/endpoints';

describe('errorFromResponse', () => {
  it('takes the message, code and details of the API error shape', () => {
    const e = errorFromResponse(
      403,
      'Forbidden',
      JSON.stringify({ error: { code: 'forbidden', message: 'only a system_admin can change a system_admin account', details: { id: 1 } } }),
    );
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(403);
    expect(e.code).toBe('forbidden');
    expect(e.message).toBe('Only a system_admin can change a system_admin account');
    expect(e.details).toEqual({ id: 1 });
  });

  it('describes FastAPI validation details when the error shape is absent', () => {
    const e = errorFromResponse(
      422,
      'Unprocessable Entity',
      JSON.stringify({ detail: [{ loc: ['body', 'password'], msg: 'String should have at least 12 characters' }] }),
    );
    expect(e.message).toBe('Password: String should have at least 12 characters');
    expect(e.code).toBe('http_422');
  });

  it('falls back to the status for empty or non-JSON bodies (a proxy page)', () => {
    expect(errorFromResponse(502, 'Bad Gateway', '<html>nginx</html>').message).toBe('Server error (HTTP 502)');
    expect(errorFromResponse(404, 'Not Found', '').message).toBe('Not Found (HTTP 404)');
    expect(errorFromResponse(400, '', JSON.stringify({ error: { code: 'x', message: '  ' } })).message).toBe(
      'Request failed (HTTP 400)',
    );
  });

  it('messageOf never returns an empty string', () => {
    expect(messageOf(new ApiError(400, 'x', 'Boom'))).toBe('Boom');
    expect(messageOf(new Error('plain'))).toBe('plain');
    expect(messageOf('weird')).toBe('Something went wrong.');
  });
});

describe('request', () => {
  const fetchMock = vi.fn();
  let onUnauthorized: ReturnType<typeof vi.fn>;
  let previous: ReturnType<typeof setUnauthorizedHandler>;

  beforeEach(() => {
    fetchMock.mockReset();
    vi.stubGlobal('fetch', fetchMock);
    onUnauthorized = vi.fn();
    previous = setUnauthorizedHandler(onUnauthorized);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    setUnauthorizedHandler(previous);
  });

  const json = (status: number, body: unknown) =>
    new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { 'Content-Type': 'application/json' },
    });

  it('sends the cookie, the dashboard header and a JSON body', async () => {
    fetchMock.mockResolvedValue(json(200, { id: 1, username: 'ann' }));
    const u = await auth.changeUsername('ann');
    expect(u).toEqual({ id: 1, username: 'ann' });
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe('/auth/profile/username');
    expect(init.method).toBe('PUT');
    expect(init.credentials).toBe('include');
    expect(init.headers['X-ML-Client']).toBe('dashboard');
    expect(init.headers['Content-Type']).toBe('application/json');
    expect(JSON.parse(init.body)).toEqual({ username: 'ann' });
  });

  it('builds query strings and skips empty values', async () => {
    expect(buildUrl('/auth/users', { limit: 50, offset: 0, q: undefined, x: null })).toBe('/auth/users?limit=50&offset=0');
    fetchMock.mockResolvedValue(json(200, { items: [], total: 0, limit: 50, offset: 100 }));
    await users.list(50, 100);
    expect(fetchMock.mock.calls[0][0]).toBe('/auth/users?limit=50&offset=100');
  });

  it('a 401 calls the unauthorized handler and still rejects with the message', async () => {
    fetchMock.mockResolvedValue(json(401, { error: { code: 'unauthorized', message: 'session expired' } }));
    await expect(tokens.list()).rejects.toMatchObject({ status: 401, message: 'Session expired' });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    expect(onUnauthorized.mock.calls[0][0]).toBeInstanceOf(ApiError);
  });

  it('a 401 from the login form is shown, not redirected', async () => {
    fetchMock.mockResolvedValue(json(401, { error: { code: 'invalid_credentials', message: 'wrong username or password' } }));
    await expect(auth.login('a', 'b')).rejects.toThrow('Wrong username or password');
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it('other errors do not redirect', async () => {
    fetchMock.mockResolvedValue(json(403, { error: { code: 'forbidden', message: 'nope' } }));
    await expect(users.remove(3)).rejects.toMatchObject({ status: 403, code: 'forbidden' });
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it('204 resolves to undefined', async () => {
    fetchMock.mockResolvedValue(new Response(null, { status: 204 }));
    await expect(tokens.remove(5)).resolves.toBeUndefined();
    expect(fetchMock.mock.calls[0][1].method).toBe('DELETE');
  });

  it('a network failure becomes a readable ApiError', async () => {
    fetchMock.mockRejectedValue(new TypeError('Failed to fetch'));
    await expect(request('/health')).rejects.toMatchObject({ status: 0, code: 'network_error' });
  });

  it('an abort is passed through untouched', async () => {
    const abort = new DOMException('aborted', 'AbortError');
    fetchMock.mockRejectedValue(abort);
    await expect(request('/health')).rejects.toBe(abort);
  });

  it('a 200 that is not JSON is an error, not a silent undefined', async () => {
    fetchMock.mockResolvedValue(new Response('<html></html>', { status: 200 }));
    await expect(request('/health')).rejects.toMatchObject({ code: 'bad_response' });
  });
});
