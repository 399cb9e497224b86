// Entry point of the azd template: one resource group holding the function app and everything it needs.
// Local modules only (no registry modules), so tests/infra can parse and check every file offline.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; seeds resource names and the azd-env-name tag.')
param environmentName string

@minLength(1)
@description('Azure region of every resource (must offer Flex Consumption).')
param location string

@description('Object id of the person running azd (AZURE_PRINCIPAL_ID); used only for optional grants.')
param principalId string = ''

@description('Client id of the API app registration (Easy Auth audience). See docs/deploy.md, step 2.')
@minLength(36)
@maxLength(36)
param authClientId string

@description('Comma-separated operator tenant ids whose tokens the API accepts; empty means this tenant.')
param authIssuerTenants string = ''

@description('Durable Functions backend. host.json follows this choice at package time (azure.yaml hooks).')
@allowed([
  'AzureStorage'
  'DurableTaskScheduler'
])
param durableBackend string = 'AzureStorage'

@description('Durable task hub name; must equal extensions.durableTask.hubName in host.json.')
param taskHubName string = 'IntuneBackupHub'

@description('Microsoft Graph base URL towards managed tenants.')
param graphBaseUrl string = 'https://graph.microsoft.com'

@description('Entra authority host for tokens towards managed tenants.')
param graphAuthorityHost string = 'https://login.microsoftonline.com'

@description('Let the deployer import the Graph certificate into Key Vault (certificate credential only).')
param grantDeployerCertificateAccess bool = false

@description('Graph credentials as app settings resolved from Key Vault: {"GRAPH_CREDENTIAL_<NAME>": "secret-name"}.')
param keyVaultSecretSettings object = {}

@description('Prefix of the app\'s table names.')
param tablePrefix string = 'intune'

@description('Blob container for captured policy bodies.')
param snapshotContainerName string = 'policy-snapshots'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var useDurableTaskScheduler = durableBackend == 'DurableTaskScheduler'
var functionAppName = 'func-api-${resourceToken}'
var deploymentContainerName = 'deployment-package'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-api-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    snapshotContainerName: snapshotContainerName
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyVault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
  }
}

module durableTaskScheduler 'app/durable-task-scheduler.bicep' = if (useDurableTaskScheduler) {
  name: 'durableTaskScheduler'
  scope: rg
  params: {
    name: 'dts-${resourceToken}'
    location: location
    tags: tags
    taskHubName: taskHubName
    principalId: identity.outputs.principalId
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    deployerPrincipalId: principalId
    grantDeployerCertificateAccess: grantDeployerCertificateAccess
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    snapshotContainerName: snapshotContainerName
    tablePrefix: tablePrefix
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    authClientId: authClientId
    authIssuerTenants: empty(authIssuerTenants) ? tenant().tenantId : authIssuerTenants
    durableBackend: durableBackend
    durableTaskSchedulerEndpoint: useDurableTaskScheduler ? durableTaskScheduler.outputs.endpoint : ''
    graphBaseUrl: graphBaseUrl
    graphAuthorityHost: graphAuthorityHost
    keyVaultSecretSettings: keyVaultSecretSettings
  }
  // The runtime needs its storage, telemetry and vault roles before the first start.
  dependsOn: [
    rbac
  ]
}

// Outputs become azd environment values (azd env get-values) and feed the hooks and scripts.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_SUBSCRIPTION_ID string = subscription().subscriptionId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output AZURE_FUNCTION_APP_URL string = api.outputs.uri
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output AZURE_USER_ASSIGNED_IDENTITY_ID string = identity.outputs.id
output AZURE_USER_ASSIGNED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_USER_ASSIGNED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URL string = keyVault.outputs.uri
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AUTH_CLIENT_ID string = authClientId
output DURABLE_BACKEND string = durableBackend
output DURABLE_TASK_HUB_NAME string = taskHubName
