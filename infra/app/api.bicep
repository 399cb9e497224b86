// The function app: Flex Consumption (FC1), Python 3.11, one user-assigned managed identity, identity-based
// storage for the runtime, the Durable backend and the app, keyless Application Insights, App Service
// Authentication (Entra ID) in front of every route except /api/health and /api/openapi.json, HTTPS only, no FTP and no basic
// publishing credentials. App settings are the contract with shared/config.py (tests/infra reads both).

@description('Name of the function app.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region of the plan and the app.')
param location string

@description('Tags applied to the plan and the app.')
param tags object = {}

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Name of the storage account (runtime, Durable AzureStorage backend, app tables and blobs).')
param storageAccountName string

@description('Blob container holding the deployment package.')
param deploymentContainerName string

@description('Blob container for captured policy bodies.')
param snapshotContainerName string

@description('Prefix of the app\'s table names.')
param tablePrefix string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Name of the Key Vault.')
param keyVaultName string

@description('Client id of the API app registration that callers request tokens for.')
param authClientId string

@description('Comma-separated operator tenant ids whose tokens are accepted.')
param authIssuerTenants string

@description('Durable backend; host.json follows it at package time (see azure.yaml hooks).')
@allowed([
  'AzureStorage'
  'DurableTaskScheduler'
])
param durableBackend string

@description('Endpoint of the Durable Task Scheduler; empty with the AzureStorage backend.')
param durableTaskSchedulerEndpoint string = ''

@description('Microsoft Graph base URL towards managed tenants.')
param graphBaseUrl string

@description('Entra authority host for tokens towards managed tenants.')
param graphAuthorityHost string

@description('Extra app settings whose values live in Key Vault: {"SETTING_NAME": "secret-name"}.')
param keyVaultSecretSettings object = {}

@description('Memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Concurrent HTTP requests per instance. Python apps default to 1; docs/deploy.md, "Concurrency and instance settings", derives 2 for 2,048 MB (one core) from the CPU a start costs.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 2

@description('Threads of the Python worker for synchronous functions (the orchestrators and most HTTP handlers; activities and the start routes are async). See docs/deploy.md.')
@minValue(1)
@maxValue(32)
param pythonThreadpoolThreadCount int = 4

@description('Upper bound of instances; keeps Graph throttling budgets and storage load predictable.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

var useDurableTaskScheduler = durableBackend == 'DurableTaskScheduler'
var storageSuffix = environment().suffixes.storage
var blobEndpoint = 'https://${storageAccountName}.blob.${storageSuffix}'
var queueEndpoint = 'https://${storageAccountName}.queue.${storageSuffix}'
var tableEndpoint = 'https://${storageAccountName}.table.${storageSuffix}'

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// Settings of the Functions host. Every storage setting is identity-based (credential + clientId +
// service URIs); host.json's Durable AzureStorage provider uses the same "AzureWebJobsStorage" prefix, so
// the task hub is identity-based too. Queue and table URIs are needed by the Durable AzureStorage backend.
var runtimeSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: blobEndpoint
  AzureWebJobsStorage__queueServiceUri: queueEndpoint
  AzureWebJobsStorage__tableServiceUri: tableEndpoint
  // Not a secret: ingestion is refused without the Entra token that the next setting asks for.
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // Platform setting of the Python worker, not read by shared/config.py. FUNCTIONS_WORKER_PROCESS_COUNT is
  // left at its default of 1: one busy process fills the instance's one core (docs/deploy.md).
  PYTHON_THREADPOOL_THREAD_COUNT: string(pythonThreadpoolThreadCount)
}

// Settings read by shared/config.py (upper-case field names). WEBSITE_AUTH_ENABLED is not set here: App
// Service sets it itself when Authentication (authsettingsV2 below) is on, and easyauth mode fails closed
// without it.
var appSettings = {
  AUTH_MODE: 'easyauth'
  AUTH_AUDIENCE: '${authClientId},api://${authClientId}'
  AUTH_ISSUER_TENANTS: authIssuerTenants
  STORAGE_TABLE_ENDPOINT: tableEndpoint
  STORAGE_BLOB_ENDPOINT: blobEndpoint
  AZURE_CLIENT_ID: identityClientId
  TABLE_PREFIX: tablePrefix
  SNAPSHOT_CONTAINER: snapshotContainerName
  KEY_VAULT_URL: vault.properties.vaultUri
  GRAPH_BASE_URL: graphBaseUrl
  GRAPH_AUTHORITY_HOST: graphAuthorityHost
  // Encrypts webhook URLs and signing secrets at rest: a Key Vault reference to a Fernet key the operator
  // stores once (docs/architecture.md, "Run events and webhooks"); until it exists, runs go on and only
  // subscriptions answer 503 webhooks-not-configured.
  WEBHOOK_ENCRYPTION_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/webhook-encryption-key/)'
}

// The Durable Task Scheduler accepts managed identities only; this value names an endpoint and an
// identity, it carries no key.
var durableTaskSchedulerSettings = useDurableTaskScheduler ? {
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: 'Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identityClientId}'
} : {}

// Secrets never appear as values: each one is a versionless Key Vault reference resolved by the platform
// with the managed identity (keyVaultReferenceIdentity), so a rotation is picked up without a deployment.
var keyVaultReferenceSettings = toObject(items(keyVaultSecretSettings), entry => entry.key, entry => '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${entry.value}/)')

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}/${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Later keys win in union(): the app's own settings cannot be overridden by keyVaultSecretSettings.
resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union(keyVaultReferenceSettings, runtimeSettings, appSettings, durableTaskSchedulerSettings)
}

// App Service Authentication: the platform validates the Entra token before our code runs and passes
// the principal in X-MS-CLIENT-PRINCIPAL. Unauthenticated API calls get 401 (never a login redirect);
// only the health probe is public. The app still authorizes every call against its grants.
resource authentication 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      // Public: liveness and the OpenAPI document (neither holds tenant data).
      excludedPaths: [
        '/api/health'
        '/api/openapi.json'
      ]
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            authClientId
            'api://${authClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

// Deployments authenticate with Entra ID (azd, az CLI); shared publishing passwords stay off.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
output uri string = 'https://${functionApp.properties.defaultHostName}'
