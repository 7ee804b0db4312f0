import { describe, expect, it } from 'vitest';
import {
  allowedNamespacesOf,
  clusterSettingsKey,
  describeRequestError,
  namespacesFromError,
  namespacesFromResponse,
  settingsWithAllowedNamespaces,
  whoAmIFromResponse,
} from './state';

// The error that Headlamp's ApiProxy.request rejects with: the HTTP status text, " - " and the
// Status message, with the HTTP code in status.
function apiProxyError(statusText: string, status: number, message: string): Error {
  const error = new Error(`${statusText} - ${message}`) as Error & { status?: number };
  error.status = status;
  return error;
}

const failureStatus = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: 'Unauthorized: the ID token has expired.',
  reason: 'Unauthorized',
  code: 401,
};

describe('whoAmIFromResponse', () => {
  it('reads the SelfSubjectReview', () => {
    const state = whoAmIFromResponse({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'SelfSubjectReview',
      status: {
        userInfo: {
          username: 'oidc:alice@example.com',
          uid: 'f3b1c9',
          groups: ['oidc:developers', 'system:authenticated'],
          extra: { 'example.com/team': ['payments'], broken: 'not a list' },
        },
      },
    });
    expect(state).toEqual({
      kind: 'identity',
      identity: {
        username: 'oidc:alice@example.com',
        uid: 'f3b1c9',
        groups: ['oidc:developers', 'system:authenticated'],
        extra: { 'example.com/team': ['payments'] },
      },
    });
  });

  it('accepts a user without uid, groups or extra', () => {
    const state = whoAmIFromResponse({ status: { userInfo: { username: 'bob' } } });
    expect(state).toEqual({
      kind: 'identity',
      identity: { username: 'bob', uid: '', groups: [], extra: {} },
    });
  });

  it('shows the message of a Status body', () => {
    const state = whoAmIFromResponse(failureStatus);
    expect(state.kind).toBe('error');
    expect(state).toHaveProperty(
      'message',
      'The cluster proxy rejected GET /lamplighter/whoami: Unauthorized: the ID token has expired. (code 401)'
    );
  });

  it('rejects a body without a user name', () => {
    for (const body of [
      null,
      'text',
      [],
      {},
      { status: {} },
      { status: { userInfo: { username: '' } } },
    ]) {
      const state = whoAmIFromResponse(body);
      expect(state.kind).toBe('error');
      expect(state).toHaveProperty('message', expect.stringContaining('status.userInfo.username'));
    }
  });
});

describe('namespacesFromResponse', () => {
  it('returns the namespaces sorted and without duplicates', () => {
    expect(namespacesFromResponse({ namespaces: ['team-b', 'team-a', 'team-b', ''] })).toEqual({
      kind: 'namespaces',
      namespaces: ['team-a', 'team-b'],
    });
  });

  it('returns empty for an empty list', () => {
    expect(namespacesFromResponse({ namespaces: [] })).toEqual({ kind: 'empty' });
    expect(namespacesFromResponse({ namespaces: [''] })).toEqual({ kind: 'empty' });
  });

  it('shows the message of a Status body', () => {
    const state = namespacesFromResponse({
      ...failureStatus,
      message: 'Namespace listing failed',
      code: 502,
    });
    expect(state).toEqual({
      kind: 'error',
      message:
        'The cluster proxy rejected GET /lamplighter/namespaces: Namespace listing failed (code 502)',
    });
  });

  it('rejects a body without a list of strings', () => {
    for (const body of [undefined, {}, { namespaces: 'team-a' }, { namespaces: ['team-a', 3] }]) {
      const state = namespacesFromResponse(body);
      expect(state.kind).toBe('error');
      expect(state).toHaveProperty(
        'message',
        expect.stringContaining('"namespaces" list of strings')
      );
    }
  });
});

describe('namespacesFromError', () => {
  it('treats 404 as listing off', () => {
    const error = apiProxyError(
      'Not Found',
      404,
      'Namespace listing is off in this cluster proxy (namespaces.mode is none).'
    );
    expect(namespacesFromError(error)).toEqual({
      kind: 'off',
      message:
        'The cluster proxy rejected GET /lamplighter/namespaces (HTTP 404): Not Found - Namespace listing is off in this cluster proxy (namespaces.mode is none).',
    });
  });

  it('reports other codes as errors', () => {
    const state = namespacesFromError(
      apiProxyError('Bad Gateway', 502, 'Namespace listing failed')
    );
    expect(state.kind).toBe('error');
    expect(state).toHaveProperty(
      'message',
      expect.stringContaining('(HTTP 502): Bad Gateway - Namespace listing failed')
    );
  });
});

describe('describeRequestError', () => {
  it('names the path and the code', () => {
    expect(
      describeRequestError(
        '/lamplighter/whoami',
        apiProxyError('Forbidden', 403, 'Forbidden: user "bob" is in none of the groups')
      )
    ).toBe(
      'The cluster proxy rejected GET /lamplighter/whoami (HTTP 403): Forbidden - Forbidden: user "bob" is in none of the groups'
    );
  });

  it('reads a thrown Status body', () => {
    expect(describeRequestError('/lamplighter/whoami', failureStatus)).toBe(
      'The cluster proxy rejected GET /lamplighter/whoami: Unauthorized: the ID token has expired. (code 401)'
    );
  });

  it('falls back for unknown values', () => {
    expect(describeRequestError('/x', 42)).toBe('The cluster proxy rejected GET /x: unknown error');
  });
});

describe('cluster settings', () => {
  it('uses Headlamp key', () => {
    expect(clusterSettingsKey('prod')).toBe('cluster_settings.prod');
  });

  it('replaces allowedNamespaces and keeps other settings', () => {
    const stored = JSON.stringify({ defaultNamespace: 'team-a', allowedNamespaces: ['old'] });
    expect(JSON.parse(settingsWithAllowedNamespaces(stored, ['team-a', 'team-b']))).toEqual({
      defaultNamespace: 'team-a',
      allowedNamespaces: ['team-a', 'team-b'],
    });
  });

  it('starts anew from missing or invalid settings', () => {
    for (const stored of [null, '', 'not json', '[1]', 'null']) {
      expect(JSON.parse(settingsWithAllowedNamespaces(stored, ['team-a']))).toEqual({
        allowedNamespaces: ['team-a'],
      });
    }
  });

  it('reads stored allowed namespaces', () => {
    expect(allowedNamespacesOf(JSON.stringify({ allowedNamespaces: ['a', 'b'] }))).toEqual([
      'a',
      'b',
    ]);
    expect(allowedNamespacesOf(null)).toEqual([]);
    expect(allowedNamespacesOf('{broken')).toEqual([]);
    expect(allowedNamespacesOf(JSON.stringify({ allowedNamespaces: 'a' }))).toEqual([]);
  });
});
