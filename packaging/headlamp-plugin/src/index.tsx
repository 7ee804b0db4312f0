// Lamplighter's Headlamp plugin: a "Who am I" page with the identity that the cluster proxy
// impersonates, and allowed namespaces taken from the cluster proxy's namespace listing.

import {
  K8s,
  registerAppBarAction,
  registerRoute,
  registerSidebarEntry,
} from '@kinvolk/headlamp-plugin/lib';
import { Loader, NameValueTable, SectionBox } from '@kinvolk/headlamp-plugin/lib/CommonComponents';
import { Alert, Box, Button, Tooltip, Typography } from '@mui/material';
import React from 'react';
import {
  fetchWhoAmI,
  latestNamespaceSync,
  NamespaceSync,
  onNamespaceSync,
  syncAllowedNamespaces,
} from './proxy';
import { Identity, WhoAmIState } from './state';

const ROUTE_NAME = 'lamplighter-whoami';
const ROUTE_PATH = '/lamplighter/whoami';

function identityRows(identity: Identity) {
  const rows = [
    { name: 'User name', value: identity.username },
    { name: 'UID', value: identity.uid || '(none)' },
    { name: 'Groups', value: identity.groups.length ? identity.groups.join(', ') : '(none)' },
  ];
  for (const [key, values] of Object.entries(identity.extra)) {
    rows.push({ name: `Extra ${key}`, value: values.join(', ') });
  }
  return rows;
}

function NamespaceSyncResult({ sync }: { sync: NamespaceSync }) {
  const { state, changed } = sync;
  switch (state.kind) {
    case 'namespaces':
      return (
        <Alert severity="success">
          Allowed namespaces set to {state.namespaces.join(', ')}.
          {changed ? ' Reload Headlamp so that views opened before use them.' : ''}
        </Alert>
      );
    case 'empty':
      return (
        <Alert severity="warning">
          The cluster proxy lists no namespaces for you, so the allowed namespaces were left as they
          were.
        </Alert>
      );
    case 'off':
      return <Alert severity="info">{state.message}</Alert>;
    case 'error':
      return <Alert severity="error">{state.message}</Alert>;
  }
}

function WhoAmIPage() {
  const cluster = K8s.useCluster();
  const [whoAmI, setWhoAmI] = React.useState<WhoAmIState | null>(null);
  const [sync, setSync] = React.useState<NamespaceSync | undefined>(undefined);

  React.useEffect(() => {
    if (!cluster) {
      return;
    }
    let current = true;
    setWhoAmI(null);
    setSync(latestNamespaceSync(cluster));
    const stopListening = onNamespaceSync((syncedCluster, result) => {
      if (syncedCluster === cluster) {
        setSync(result);
      }
    });
    fetchWhoAmI(cluster).then(state => {
      if (current) {
        setWhoAmI(state);
      }
    });
    return () => {
      current = false;
      stopListening();
    };
  }, [cluster]);

  if (!cluster) {
    return <Alert severity="error">Open a cluster first: this page belongs to one cluster.</Alert>;
  }
  return (
    <>
      <SectionBox title="Who am I">
        {whoAmI === null && <Loader title="Asking the cluster proxy who you are" />}
        {whoAmI?.kind === 'error' && <Alert severity="error">{whoAmI.message}</Alert>}
        {whoAmI?.kind === 'identity' && <NameValueTable rows={identityRows(whoAmI.identity)} />}
      </SectionBox>
      <SectionBox title="Allowed namespaces">
        <Box sx={{ display: 'flex', flexDirection: 'column', gap: 1 }}>
          {sync ? (
            <NamespaceSyncResult sync={sync} />
          ) : (
            <Typography>Not fetched from the cluster proxy yet.</Typography>
          )}
          <Box>
            <Button variant="outlined" onClick={() => syncAllowedNamespaces(cluster)}>
              Fetch again
            </Button>
          </Box>
        </Box>
      </SectionBox>
    </>
  );
}

// Fetches the allowed namespaces once per cluster after Headlamp loads, and shows a warning in
// the app bar only when that fails.
function AllowedNamespacesAction() {
  const cluster = K8s.useCluster();
  const [sync, setSync] = React.useState<NamespaceSync | undefined>(undefined);

  React.useEffect(() => {
    if (!cluster) {
      setSync(undefined);
      return;
    }
    const stopListening = onNamespaceSync((syncedCluster, result) => {
      if (syncedCluster === cluster) {
        setSync(result);
      }
    });
    const latest = latestNamespaceSync(cluster);
    setSync(latest);
    if (!latest) {
      syncAllowedNamespaces(cluster);
    }
    return stopListening;
  }, [cluster]);

  if (sync?.state.kind !== 'error') {
    return null;
  }
  return (
    <Tooltip title={sync.state.message}>
      <Typography color="warning.main" variant="body2">
        Allowed namespaces not set
      </Typography>
    </Tooltip>
  );
}

registerSidebarEntry({
  parent: null,
  name: ROUTE_NAME,
  label: 'Who am I',
  url: ROUTE_PATH,
  icon: 'mdi:account-question-outline',
});

registerRoute({
  path: ROUTE_PATH,
  sidebar: ROUTE_NAME,
  name: ROUTE_NAME,
  exact: true,
  component: () => <WhoAmIPage />,
});

registerAppBarAction(AllowedNamespacesAction);
